"""The Attempt admin: every try, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString

from jobs.admin.base import (
    IndexedSearchMixin,
    LargeTableAdmin,
    StatusDurationColumns,
    admin_link,
    truncated,
    value_url,
)
from jobs.models import Attempt
from jobs.ops import access
from jobs.ops.presentation import bounded_pre, short_id

# --- Attempt -------------------------------------------------------------------------------


@admin.register(Attempt)
class AttemptAdmin(IndexedSearchMixin, StatusDurationColumns, LargeTableAdmin):
    """Read-only: an attempt is a record of what happened."""

    list_display = ("job_link", "number", "status_display", "started_at", "duration_display",
                    "worker", "error_short")
    list_filter = ("status",)
    list_select_related = ("job",)
    # Newest first by the primary key: Meta.ordering ("job", ...) would join
    # and sort by the job's own ordering.
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("job__id",)
    search_help_text = "A job id (or its first 8+ characters)."
    id_field = "job_id"
    fields = ("job_link", "number", "status_display", "step", "started_at", "finished_at",
              "duration_display", "retry_at", "worker", "worker_id", "worker_cluster",
              "error_class", "error_message",
              "traceback_pre")
    readonly_fields = fields
    status_kind = "attempt"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """An attempt's error and traceback are job data: jobs.view_job too (jobs.ops.access)."""
        return access.may_view_job_record(request.user, "attempt")

    @admin.display(description="job")
    def job_link(self, obj: Attempt) -> SafeString:
        return admin_link(obj.job, f"{obj.job.task_name} {short_id(obj.job_id)}")

    @admin.display(description="error")
    def error_short(self, obj: Attempt) -> str:
        if not obj.error_class:
            return ""
        return truncated(f"{obj.error_class}: {obj.error_message}")

    @admin.display(description="traceback")
    def traceback_pre(self, obj: Attempt) -> SafeString:
        if not obj.traceback:
            return "-"
        return bounded_pre(obj.traceback, value_url("attempt", obj.pk, "traceback"))


