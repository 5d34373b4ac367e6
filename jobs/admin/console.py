"""The audit log and paused queues in the admin (the dashboard shows and changes them too,
through the same jobs.ops modules); and django-q2's own admin, hidden."""

from __future__ import annotations

import django_q.admin  # noqa: F401 - registers django-q2's models, so they can be hidden
from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString
from django_q import models as q_models

from jobs.admin.base import admin_link
from jobs.models import OperatorAction, QueuePause
from jobs.ops import audit, bulk, operations

# django-q2's Failed / Queued / Scheduled / Successful tasks stay empty here: every job,
# attempt and schedule is ours (jobs.*). Showing them beside ours only misleads.
for model in (q_models.Failure, q_models.OrmQ, q_models.Schedule, q_models.Success):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnly):
    """The audit log: kept with the jobs, never edited."""

    list_display = ("created_at", "username", "action_label", "target_text", "outcome", "note")
    list_filter = ("action", "status")
    search_fields = ("username",)
    ordering = ("-created_at", "-id")
    sortable_by = ()
    fields = ("created_at", "finished_at", "username", "action", "target", "outcome",
              "status", "matched", "done", "skipped", "skipped_reasons", "note", "job_link",
              "error")
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Whoever started an operation may follow it; the whole log needs the view right."""
        mine = isinstance(obj, OperatorAction) and obj.user_id == request.user.pk
        return mine or super().has_view_permission(request, obj)

    @admin.display(description="action")
    def action_label(self, obj: OperatorAction) -> str:
        return operations.label(obj.action)

    @admin.display(description="applied to")
    def target_text(self, obj: OperatorAction) -> str:
        return audit.describe_target(obj.target)

    @admin.display(description="outcome")
    def outcome(self, obj: OperatorAction) -> str:
        return bulk.report(obj)

    @admin.display(description="carried out by")
    def job_link(self, obj: OperatorAction) -> SafeString | str:
        return admin_link(obj.job, str(obj.job_id)) if obj.job_id else "-"


@admin.register(QueuePause)
class QueuePauseAdmin(ReadOnly):
    """Which queues are paused, by whom and since when (pause and resume on the dashboard's
    Queues page, with the permission jobs.pause_queue)."""

    list_display = ("queue", "paused_at", "paused_by")
    ordering = ("queue",)
