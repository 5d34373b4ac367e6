"""The Job admin: browse, filter and fix jobs; their steps and attempts inline."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.admin.base import (
    CreatedFilter,
    IndexedSearchMixin,
    LargeTableAdmin,
    OperationsActionsMixin,
    QueueFilter,
    StatusDurationColumns,
    TaskFilter,
    admin_filters,
    admin_link,
    error_details,
    pretty_json,
    step_progress,
    stream_ids,
    truncated,
)
from jobs.models import Attempt, DeadLetter, Job, JobStatus, Step
from jobs.ops import access, bulk, operations, search
from jobs.ops.presentation import duration_text, short_id, status_dot
from jobs.ops.step_runs import step_time
from jobs.ops.values import value_text

# --- Job -----------------------------------------------------------------------------------


class EngineJobsFilter(admin.SimpleListFilter):
    """Leaves the engine's own jobs (an operation's, `jobs.bulk_action`) out of the list
    unless shown here, or named by the task filter or a search: `search.hide_engine_jobs`,
    the rule the dashboard's list follows too."""

    title = "the engine's own jobs"
    parameter_name = "engine"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("1", "Shown")]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == "All":  # the default: what it means here
                choice["display"] = "Hidden"
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return search.hide_engine_jobs(queryset, {
            "engine": self.value() == "1", "task": request.GET.get("task"),
            "q": request.GET.get("q")})


class AttemptInline(StatusDurationColumns, admin.TabularInline):
    """Every try, newest first, each with its error and (folded) traceback."""

    model = Attempt
    extra = 0
    can_delete = False
    ordering = ("-number",)
    fields = ("number", "status_display", "started_at", "duration_display", "worker",
              "step_display", "error")
    readonly_fields = fields
    status_kind = "attempt"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("step")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="step")
    def step_display(self, obj: Attempt) -> SafeString | str:
        """The step this attempt ended in, with its status dot, as the step rows show it."""
        if obj.step is None:
            return "-"
        return format_html("{} {}", status_dot(obj.step.status, "step", False),
                           admin_link(obj.step, obj.step.name))

    @admin.display(description="error")
    def error(self, obj: Attempt) -> SafeString:
        return error_details(obj, "attempt")


class StepInline(StatusDurationColumns, admin.TabularInline):
    """The job's checkpoints; each links to its Step page, where limits are edited."""

    model = Step
    extra = 0
    can_delete = False
    ordering = ("position", "id")
    fields = ("position", "step_link", "status_display", "time", "attempts_display",
              "limits_display", "progress", "error")
    readonly_fields = fields
    status_kind = "step"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="step")
    def step_link(self, obj: Step) -> SafeString:
        return admin_link(obj, obj.name)

    @admin.display(description="time")
    def time(self, obj: Step) -> str:
        """Its latest run's time, as the dashboard's step heading says it."""
        return step_time(obj, timezone.now())

    @admin.display(description="attempts")
    def attempts_display(self, obj: Step) -> str:
        return f"{obj.attempts} / {obj.max_attempts or '-'}"

    @admin.display(description="limits")
    def limits_display(self, obj: Step) -> SafeString:
        return pretty_json(obj.limits, "step", obj.pk, "limits") if obj.limits else "-"

    @admin.display(description="progress")
    def progress(self, obj: Step) -> str:
        return step_progress(obj)

    @admin.display(description="error")
    def error(self, obj: Step) -> SafeString:
        return error_details(obj, "step")


@admin.register(Job)
class JobAdmin(IndexedSearchMixin, OperationsActionsMixin, StatusDurationColumns,
               LargeTableAdmin):
    list_display = ("short_id", "status_display", "task_name_display", "queue_display",
                    "attempts_display", "age", "duration", "last_error_short")
    # Only columns with an index are sortable: sorting a million rows by
    # anything else is a full sort on every page view.
    sortable_by = ("age",)
    ordering = ("-created_at",)
    list_filter = ("status", QueueFilter, TaskFilter, CreatedFilter, EngineJobsFilter)
    search_fields = ("id", "idempotency_key", "task_name")  # shown; matched exactly below
    search_help_text = ("A job id (or its first 8+ characters), an idempotency key or a task "
                        "name — matched exactly.")
    exact_fields = ("idempotency_key", "task_name")
    inlines = [StepInline, AttemptInline]
    actions = ["requeue_selected", "resume_selected", "cancel_selected", "resolve_selected"]
    gated_actions = {"requeue_selected": "requeue", "resume_selected": "resume",
                     "cancel_selected": "cancel", "resolve_selected": "resolve"}
    fieldsets = (
        (None, {"fields": ("id", "status_display", "task_name", "queue", "priority",
                           "attempts_display", "last_attempt_number", "idempotency_key",
                           "enqueued_by")}),
        ("Timing", {"fields": ("created_at", "run_after", "started_at", "finished_at",
                               "age", "duration")}),
        ("Arguments and outcome", {"fields": ("args_pretty", "kwargs_pretty", "result_pretty",
                                              "last_error_pre")}),
        ("Worker and lease", {"classes": ("collapse",),
                              "fields": ("lease_owner", "lease_expires_at", "heartbeat_at",
                                         "reserved_until", "cancel_requested_at")}),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Viewing only: saving a form would bypass the state machine.
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Every job page shows job data: the one rule (jobs.ops.access) decides."""
        return access.can_read_job_data(request.user)

    # List columns ----------------------------------------------------------------

    @admin.display(description="id")
    def short_id(self, obj: Job) -> str:
        return short_id(obj.pk)

    # Task, queue and error are cut to their column (admin/jobs/job/change_list.html):
    # the whole text is the tooltip.
    @admin.display(description="task")
    def task_name_display(self, obj: Job) -> SafeString:
        return format_html('<span title="{}">{}</span>', obj.task_name, obj.task_name)

    @admin.display(description="queue")
    def queue_display(self, obj: Job) -> SafeString:
        return format_html('<span title="{}">{}</span>', obj.queue, obj.queue)

    @admin.display(description="attempts")
    def attempts_display(self, obj: Job) -> str:
        return f"{obj.attempt_count} / {obj.max_attempts}"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Job) -> str:
        return duration_text(timezone.now() - obj.created_at)

    @admin.display(description="duration")
    def duration(self, obj: Job) -> str:
        end = obj.finished_at or (timezone.now() if obj.status == JobStatus.RUNNING else None)
        return duration_text(end - obj.started_at if obj.started_at and end else None)

    @admin.display(description="last error")
    def last_error_short(self, obj: Job) -> SafeString | str:
        """One line cut to the column, the whole summary on hover (Job.last_error, at
        most 300 characters); the job's page has the error and its traceback."""
        if not obj.last_error:
            return ""
        return format_html('<span class="last-error" title="{}">{}</span>', obj.last_error,
                           truncated(obj.last_error, 160))

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict | None = None) -> HttpResponse:
        # The widest table of the admin gets the page's width: no app list beside it.
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, context)

    # The whole of a long value (a page shows a bounded preview) -----------------

    def get_urls(self) -> list:
        value = path("value/<str:kind>/<str:pk>/<str:field>/",
                     self.admin_site.admin_view(self.value_view), name="jobs_value")
        act = path("<uuid:job_id>/act/<slug:action>/",
                   self.admin_site.admin_view(self.act_view), name="jobs_job_act")
        return [value, act, *super().get_urls()]

    # Fixing one job from its own page: Resume, Requeue, Cancel, Resolve buttons ----

    change_form_template = "admin/jobs/job/change_form.html"

    def render_change_form(self, request: HttpRequest, context: dict[str, Any],
                           add: bool = False, change: bool = False, form_url: str = "",
                           obj: Job | None = None) -> HttpResponse:
        if obj is not None:  # the job change_view already read, not a second query for it
            has_letter = DeadLetter.objects.filter(job=obj, resolved_at__isnull=True).exists()
            context["job_actions"] = operations.available_for_job(request.user, obj.status,
                                                                  has_letter)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def act_view(self, request: HttpRequest, job_id: Any, action: str) -> HttpResponse:
        """POST only (CSRF-checked by the admin); back to this job's page, never to a
        URL the request names."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in operations.ACTIONS:
            raise Http404(f"no action {action!r}")
        job = get_object_or_404(Job, pk=job_id)
        note = request.POST.get("note", "")[:500]
        options = {"note": note} if action == "resolve" and note else {}
        self.report(request, operations.perform(action, request.user, [job.pk], **options))
        return redirect(reverse("admin:jobs_job_change", args=[job.pk]))

    def value_view(self, request: HttpRequest, kind: str, pk: str, field: str) -> HttpResponse:
        """Plain text, so a value can never run as markup, for anyone who may view jobs."""
        text = value_text(kind, pk, field, user=request.user)  # PermissionDenied for others
        if text is None:
            raise Http404("No such value.")
        return HttpResponse(text, content_type="text/plain; charset=utf-8")

    # Detail fields ---------------------------------------------------------------

    @admin.display(description="args")
    def args_pretty(self, obj: Job) -> SafeString:
        return pretty_json(obj.args, "job", obj.pk, "args")

    @admin.display(description="kwargs")
    def kwargs_pretty(self, obj: Job) -> SafeString:
        return pretty_json(obj.kwargs, "job", obj.pk, "kwargs")

    @admin.display(description="result")
    def result_pretty(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.result, "job", obj.pk, "result") if obj.result is not None else "-"

    @admin.display(description="last error")
    def last_error_pre(self, obj: Job) -> SafeString:
        return format_html("<pre>{}</pre>", obj.last_error) if obj.last_error else "-"

    # Actions ---------------------------------------------------------------------
    # "Select all N" runs in the background (jobs.ops.bulk), never in the request.

    @admin.action(permissions=["requeue"], description=operations.ACTIONS["requeue"].label)
    def requeue_selected(self, request: HttpRequest,
                         queryset: QuerySet[Job]) -> HttpResponse | None:
        return self.act(request, "requeue", queryset)

    @admin.action(permissions=["resume"], description=operations.ACTIONS["resume"].label)
    def resume_selected(self, request: HttpRequest,
                        queryset: QuerySet[Job]) -> HttpResponse | None:
        return self.act(request, "resume", queryset)

    @admin.action(permissions=["cancel"], description=operations.ACTIONS["cancel"].label)
    def cancel_selected(self, request: HttpRequest,
                        queryset: QuerySet[Job]) -> HttpResponse | None:
        return self.act(request, "cancel", queryset)

    @admin.action(permissions=["resolve"], description="Resolve dead letters (with a note)…")
    def resolve_selected(self, request: HttpRequest,
                         queryset: QuerySet[Job]) -> HttpResponse | None:
        page = self.resolve_note_page(request, queryset)
        if page is not None:
            return page
        return self.act(request, "resolve", queryset, note=self.resolve_note(request))

    def act(self, request: HttpRequest, name: str, queryset: QuerySet[Job],
            **options: Any) -> HttpResponse | None:
        if request.POST.get("select_across") != "1":
            self.run_operation(request, name, stream_ids(queryset), **options)
            return None
        filters = admin_filters(request)
        if filters is None:
            self.message_user(request, "Nothing was started: this list's filters cannot be "
                              "handed to a background action; filter by status, queue, task, "
                              "creation time or search only.", messages.ERROR)
            return None
        row = bulk.start(name, request.user, filters, note=options.get("note", ""))
        self.message_user(request, f"Started: {operations.ACTIONS[name].label} on every "
                          f"matching job, in the background. This page shows its progress.",
                          messages.SUCCESS)
        return redirect(reverse("admin:jobs_operatoraction_change", args=[row.pk]))


