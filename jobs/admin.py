"""Operators' view of the truth. Read-only where editing would make it lie;
actions go through `jobs.transitions`, never by writing `status`."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from jobs import transitions
from jobs.models import Attempt, DeadLetter, Job, JobStatus

STATUS_COLOURS = {
    JobStatus.QUEUED: "#6b7280",
    JobStatus.RUNNING: "#2563eb",
    JobStatus.RETRYING: "#d97706",
    JobStatus.SUCCEEDED: "#16a34a",
    JobStatus.DEAD: "#dc2626",
    JobStatus.CANCELLED: "#9ca3af",
}


def status_dot(status: str) -> str:
    label = JobStatus(status).label
    return format_html(
        '<span style="color:{}" aria-hidden="true">&#9679;</span> {}',
        STATUS_COLOURS.get(status, "#000"),
        label,
    )


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("number", "status", "started_at", "duration", "worker", "error_class",
              "error_message", "traceback")
    readonly_fields = fields
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("short_id", "status_display", "task_name", "queue", "attempts_display",
                    "created_at", "last_error_short")
    list_filter = ("status", "queue", "task_name")
    search_fields = ("=id", "=idempotency_key", "task_name")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 50
    inlines = [AttemptInline]
    actions = ["requeue_selected", "cancel_selected"]
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Viewing is allowed; saving a form would bypass the state machine.
        return False

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Job) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Job) -> str:
        return status_dot(obj.status)

    @admin.display(description="attempts")
    def attempts_display(self, obj: Job) -> str:
        return f"{obj.attempt_count} / {obj.max_attempts}"

    @admin.display(description="last error")
    def last_error_short(self, obj: Job) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Requeue selected dead or cancelled jobs")
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        result = transitions.requeue(
            queryset.values_list("pk", flat=True), by=request.user,
            note=f"requeued from the admin by {request.user}",
        )
        self.message_user(
            request,
            f"Requeued {len(result.done)}, skipped {len(result.skipped)} "
            "that are not dead or cancelled.",
            messages.SUCCESS if result.done else messages.WARNING,
        )

    @admin.action(description="Cancel selected jobs")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        result = transitions.cancel(queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"Cancelled {len(result.done)}, asked {len(result.requested)} running to stop, "
            f"skipped {len(result.skipped)} already finished.",
        )


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("job", "error_class", "error_message", "attempts", "failed_at",
                    "resolved_at", "resolved_by")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "job__task_name")
    list_select_related = ("job", "resolved_by")
    ordering = ("-resolved_at", "-failed_at")
    readonly_fields = [f.name for f in DeadLetter._meta.fields if f.name != "note"]
    actions = ["resolve_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resolve selected dead letters")
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        done = transitions.resolve_dead_letters(
            queryset.values_list("pk", flat=True), by=request.user,
            note=f"resolved from the admin by {request.user}", now=timezone.now(),
        )
        self.message_user(request, f"Resolved {done}, skipped {queryset.count() - done} "
                                   "already resolved.")


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ("job", "number", "status", "started_at", "duration", "worker",
                    "error_class")
    list_filter = ("status",)
    list_select_related = ("job",)
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in Attempt._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
