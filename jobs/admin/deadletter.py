"""The DeadLetter admin: triage failures, resolve with a note, requeue."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from jobs.admin.base import (
    DeadLetterTaskFilter,
    FailedAtFilter,
    IndexedSearchMixin,
    LargeTableAdmin,
    OperationsActionsMixin,
    ResolvedFilter,
    admin_link,
    perform_in_chunks,
    stream_ids,
    truncated,
    value_url,
)
from jobs.models import DeadLetter, Job
from jobs.ops import access
from jobs.ops.presentation import bounded_pre, short_id

# --- DeadLetter ----------------------------------------------------------------------------


@admin.register(DeadLetter)
class DeadLetterAdmin(IndexedSearchMixin, OperationsActionsMixin, LargeTableAdmin):
    list_display = ("job_link", "task", "final_error", "attempts", "failed_at",
                    "resolved_display", "resolved_by")
    list_filter = (ResolvedFilter, DeadLetterTaskFilter, FailedAtFilter)
    list_select_related = ("job", "attempt", "resolved_by")
    # Unresolved first (newest failure first), then the most recently resolved.
    ordering = (F("resolved_at").desc(nulls_first=True), "-failed_at")
    sortable_by = ()
    search_fields = ("job__id",)
    search_help_text = "A job id (or its first 8+ characters)."
    id_field = "job_id"
    fields = ("job_link", "task", "error_class", "error_message", "traceback_pre", "attempts",
              "failed_at", "resolved_at", "resolved_by", "note")
    readonly_fields = tuple(f for f in fields if f != "note")
    actions = ["resolve_selected", "requeue_selected"]
    gated_actions = {"resolve_selected": "resolve", "requeue_selected": "requeue"}

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """A dead letter's error and traceback are job data: jobs.view_job too."""
        return access.may_view_job_record(request.user, "deadletter")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Saving the note shows the letter: jobs.view_job too (jobs.ops.access)."""
        return access.may_change_job_record(request.user, "deadletter")

    @admin.display(description="job")
    def job_link(self, obj: DeadLetter) -> SafeString:
        return admin_link(obj.job, short_id(obj.job_id))

    @admin.display(description="task")
    def task(self, obj: DeadLetter) -> str:
        return obj.job.task_name

    @admin.display(description="final error")
    def final_error(self, obj: DeadLetter) -> str:
        return truncated(f"{obj.error_class}: {obj.error_message}" if obj.error_message
                         else obj.error_class)

    @admin.display(description="resolved")
    def resolved_display(self, obj: DeadLetter) -> str:
        return obj.resolved_at.strftime("%Y-%m-%d %H:%M") if obj.resolved_at else "no"

    @admin.display(description="traceback")
    def traceback_pre(self, obj: DeadLetter) -> SafeString:
        if not obj.traceback:
            return "-"
        return bounded_pre(obj.traceback, value_url("attempt", obj.attempt_id, "traceback"))

    @admin.action(permissions=["resolve"], description="Resolve selected dead letters…")
    def resolve_selected(self, request: HttpRequest,
                         queryset: QuerySet[DeadLetter]) -> TemplateResponse | None:
        open_letters = queryset.filter(resolved_at__isnull=True)
        jobs = Job.objects.filter(pk__in=open_letters.values("job_id"))
        page = self.resolve_note_page(request, jobs)
        if page is not None:
            return page
        # A job has at most one open letter, so resolving "the open letter of
        # each job" resolves exactly the selected open letters; letters already
        # resolved are reported as skipped.
        already = list(queryset.filter(resolved_at__isnull=False)
                       .values_list("job_id", flat=True))
        report = perform_in_chunks("resolve", request.user,
                                   stream_ids(open_letters, "job_id"),
                                   note=self.resolve_note(request))
        report.result.skipped.extend(already)
        self.report(request, report)
        return None

    @admin.action(permissions=["requeue"], description="Requeue the jobs of the selected")
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self.run_operation(request, "requeue", stream_ids(queryset.distinct(), "job_id"))


