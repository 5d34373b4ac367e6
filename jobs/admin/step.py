"""The Step admin: read-only but for the limits an operator raises before a resume."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.safestring import SafeString

from jobs.admin.base import (
    IndexedSearchMixin,
    LargeTableAdmin,
    StatusDurationColumns,
    admin_link,
    error_details,
    pretty_json,
    step_progress,
)
from jobs.models import Step
from jobs.ops import access, operations
from jobs.ops.forms import StepLimitsForm
from jobs.ops.presentation import short_id

# --- Step ----------------------------------------------------------------------------------


@admin.register(Step)
class StepAdmin(IndexedSearchMixin, StatusDurationColumns, LargeTableAdmin):
    """Read-only except `limits`, which an operator raises before resuming the job."""

    # Shared with the dashboard: parses the JSON, checks it with validate_limits.
    form = StepLimitsForm
    list_display = ("name", "job_link", "position", "status_display", "attempts", "limits",
                    "duration_display", "finished_at")
    list_filter = ("status",)
    list_select_related = ("job",)
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("job__id", "name")
    search_help_text = "A job id (or its first 8+ characters) or an exact step name."
    id_field = "job_id"
    exact_fields = ("name",)
    fields = ("job_link", "position", "name", "status_display", "limits", "attempts",
              "max_attempts", "timeout", "progress", "started_at", "finished_at",
              "error", "result_pretty")
    readonly_fields = tuple(f for f in fields if f != "limits")
    status_kind = "step"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Raising a limit is part of resuming a job: the same permission, on a page that
        # shows the step's result and error, so jobs.view_job too.
        return access.may_edit_step_limits(request.user)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """A step's result, error and traceback are job data: jobs.view_job too."""
        return access.may_view_job_record(request.user, "step")

    def save_model(self, request: HttpRequest, obj: Step, form: forms.ModelForm,
                   change: bool) -> None:
        # The one save path, as on the dashboard: it checks the permission again and
        # writes the limits column only, so status or progress that a worker wrote
        # while the form was open stay as they are.
        operations.save_step_limits(request.user, obj, form.cleaned_data["limits"])

    def response_change(self, request: HttpRequest, obj: Step) -> HttpResponse:
        """Back to the job, where the operator resumes it with the new limits."""
        self.message_user(request, f"Saved the limits of step “{obj.name}”; resume the job "
                                   "(button above) to run with them.", messages.SUCCESS)
        return redirect(reverse("admin:jobs_job_change", args=[obj.job_id]))

    @admin.display(description="job")
    def job_link(self, obj: Step) -> SafeString:
        return admin_link(obj.job, f"{obj.job.task_name} {short_id(obj.job_id)}")

    @admin.display(description="progress")
    def progress(self, obj: Step) -> str:
        return step_progress(obj)

    @admin.display(description="error")
    def error(self, obj: Step) -> SafeString:
        return error_details(obj, "step")

    @admin.display(description="result")
    def result_pretty(self, obj: Step) -> SafeString:
        return pretty_json(obj.result, "step", obj.pk, "result")


