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


# --- Schedules ------------------------------------------------------------------------
# Imports for this section sit here so the section can be read (and moved) on its own.
from datetime import datetime  # noqa: E402

from django import forms  # noqa: E402
from django.contrib.admin import helpers  # noqa: E402
from django.contrib.admin.utils import flatten_fieldsets, unquote  # noqa: E402
from django.core.exceptions import PermissionDenied, ValidationError  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.utils.html import format_html_join  # noqa: E402
from django.utils.safestring import SafeString  # noqa: E402

from jobs import schedules  # noqa: E402
from jobs.api import registered_tasks  # noqa: E402
from jobs.exceptions import JobsError  # noqa: E402
from jobs.models import Schedule  # noqa: E402

PREVIEW_COUNT = 5


def preview_html(times: list[datetime], time_zone: str) -> SafeString:
    items = format_html_join(
        "", "<li>{}</li>", ((schedules.format_run(t, time_zone),) for t in times)
    )
    return format_html("Next {} runs:<ul>{}</ul>", len(times), items)


class CronInput(forms.TextInput):
    """The expression plus a Preview button: the operator sees the times before saving."""

    def render(self, name: str, value: object, attrs: dict | None = None,
               renderer: object = None) -> SafeString:
        field = super().render(name, value, attrs, renderer)
        return format_html(
            '{} <button type="submit" name="_preview" value="1" class="button">'
            "Preview next {} runs</button>", field, PREVIEW_COUNT,
        )


class TimeZoneInput(forms.TextInput):
    """Free text with the IANA names as suggestions; the model validates the choice."""

    def render(self, name: str, value: object, attrs: dict | None = None,
               renderer: object = None) -> SafeString:
        attrs = {**(attrs or {}), "list": "schedule-time-zones"}
        options = format_html_join(
            "", '<option value="{}">', ((z,) for z in sorted(schedules.known_time_zones()))
        )
        return format_html('{}<datalist id="schedule-time-zones">{}</datalist>',
                           super().render(name, value, attrs, renderer), options)


class ScheduleForm(forms.ModelForm):
    """Validates like Schedule.full_clean and computes the next runs from the submitted data."""

    task_name = forms.ChoiceField(choices=(), help_text="A registered task.")

    class Meta:
        model = Schedule
        fields = ["name", "task_name", "args", "kwargs", "cron", "time_zone", "enabled",
                  "overlap_policy", "misfire_policy", "jitter_seconds"]
        widgets = {"cron": CronInput, "time_zone": TimeZoneInput}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.preview: list[datetime] = []
        if "task_name" in self.fields:
            self.fields["task_name"].choices = [("", "---------")] + [
                (name, name) for name in sorted(registered_tasks())
            ]
        if not self.is_bound and self.instance.pk:
            self._set_preview(self.instance.cron, self.instance.time_zone)

    def clean(self) -> dict:
        data = super().clean()
        self._set_preview(data.get("cron"), data.get("time_zone"))
        return data

    def _set_preview(self, cron: str | None, time_zone: str | None) -> None:
        """Fill self.preview when both values are valid; the model reports them otherwise."""
        if not cron or not time_zone or "cron" not in self.fields:
            return
        try:
            cron = schedules.validate_cron(cron)
            schedules.validate_time_zone(time_zone)
        except ValidationError:
            return
        self.preview = schedules.upcoming(cron, time_zone, PREVIEW_COUNT)
        self.fields["cron"].help_text = preview_html(self.preview, time_zone)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "task_name", "when", "enabled", "next_run_display", "last_run_at",
                    "last_job", "overlap_policy", "misfire_policy", "last_error_short")
    list_filter = ("enabled", "task_name")
    search_fields = ("name", "task_name")
    list_select_related = ("last_job",)
    readonly_fields = ("next_run_display", "last_run_at", "last_job", "last_error",
                       "created_at")
    fieldsets = (
        (None, {"fields": ("name", "task_name", "args", "kwargs")}),
        ("When", {"fields": ("cron", "time_zone", "enabled", "next_run_display")}),
        ("Policies", {"fields": ("overlap_policy", "misfire_policy", "jitter_seconds")}),
        ("Last run", {"fields": ("last_run_at", "last_job", "last_error", "created_at")}),
    )
    actions = ["run_now_selected"]

    @admin.display(description="schedule", ordering="cron")
    def when(self, obj: Schedule) -> str:
        return f"{obj.cron} ({obj.time_zone})"

    @admin.display(description="next run", ordering="next_run_at")
    def next_run_display(self, obj: Schedule) -> str:
        if obj.next_run_at is None:
            return "disabled" if not obj.enabled else "-"
        return schedules.format_run(obj.next_run_at, obj.time_zone)

    @admin.display(description="last error")
    def last_error_short(self, obj: Schedule) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Run selected schedules now (once each)")
    def run_now_selected(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            try:
                job = schedules.run_now(schedule)
            except JobsError as exc:
                self.message_user(request, f"{schedule.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{schedule.name}: enqueued job {job.pk}")

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST" and "_preview" in request.POST:
            return self._preview_view(request, object_id, form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _preview_view(self, request: HttpRequest, object_id: str | None, form_url: str,
                      extra_context: dict | None) -> HttpResponse:
        """Re-render the submitted form with its next runs; nothing is saved."""
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        allowed = (self.has_change_permission(request, obj) if obj
                   else self.has_add_permission(request))
        if not allowed:
            raise PermissionDenied
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(request, obj, change=obj is not None,
                                   fields=flatten_fieldsets(fieldsets))
        form = form_class(request.POST, instance=obj)
        form.is_valid()
        if form.preview:
            self.message_user(request, format_html(
                "Preview only, nothing saved. {}",
                preview_html(form.preview, form.cleaned_data["time_zone"]),
            ))
        admin_form = helpers.AdminForm(
            form, list(fieldsets), self.get_prepopulated_fields(request, obj),
            self.get_readonly_fields(request, obj), model_admin=self,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{'Change' if obj else 'Add'} {self.opts.verbose_name}",
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": object_id,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=obj is None,
                                       change=obj is not None, obj=obj, form_url=form_url)
