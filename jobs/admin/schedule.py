"""The Schedule admin: cron plus time zone, with a preview of the next runs."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobs.admin.base import GuardedAdmin
from jobs.core.registry import registered_tasks
from jobs.exceptions import JobsError
from jobs.models import Schedule
from jobs.ops import operations
from jobs.ops.forms import LimitsField
from jobs.ops.guards import MAX_PARAMETER_CHARS, refuses_unstorable_input
from jobs.scheduling import cron, firing

# --- Schedule ------------------------------------------------------------------------------

PREVIEW_COUNT = 5


def preview_html(times: list[datetime], time_zone: str) -> SafeString:
    items = format_html_join(
        "", "<li>{}</li>", ((cron.format_run(t, time_zone),) for t in times)
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
            "", '<option value="{}">', ((z,) for z in sorted(cron.known_time_zones()))
        )
        return format_html('{}<datalist id="schedule-time-zones">{}</datalist>',
                           super().render(name, value, attrs, renderer), options)


class ArgumentsField(LimitsField):
    """args / kwargs as strict JSON (see LimitsField): a surrogate escape, NaN, a huge
    integer or nesting past the stack is a form error naming the rule, never a 500.
    Whether the value fits the task is validate_schedule's (via validate_task_call)."""

    MAX_CHARS = MAX_PARAMETER_CHARS


# Text fields stored as typed: surrounding spaces are a form error, not trimmed.
UNTRIMMED = ("name", "cron", "time_zone")


class ScheduleForm(forms.ModelForm):
    """Validates like Schedule.full_clean and computes the next runs from the submitted data."""

    task_name = forms.ChoiceField(choices=(), help_text="A registered task.")

    class Meta:
        model = Schedule
        fields = ["name", "task_name", "args", "kwargs", "cron", "time_zone", "enabled",
                  "overlap_policy", "misfire_policy", "jitter_seconds"]
        widgets = {"cron": CronInput, "time_zone": TimeZoneInput}
        field_classes = {"args": ArgumentsField, "kwargs": ArgumentsField}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.preview: list[datetime] = []
        for name in ("args", "kwargs"):
            if name in self.fields:
                self.fields[name].what = name  # errors say "args[0] ...", not "limits"
        for name in UNTRIMMED:
            if name in self.fields:
                self.fields[name].strip = False  # refused in clean(), never trimmed in silence
        if "task_name" in self.fields:
            self.fields["task_name"].choices = [("", "---------")] + [
                (name, name) for name in sorted(registered_tasks())
            ]
        if not self.is_bound and self.instance.pk:
            self._set_preview(self.instance.cron, self.instance.time_zone)

    def clean(self) -> dict:
        data = super().clean()
        for name in UNTRIMMED:
            value = data.get(name)
            if isinstance(value, str) and value != value.strip():
                # Saved as typed, " nightly" and "nightly" would be two schedules that
                # look like one; trimmed, the value would not be what was typed.
                self.add_error(name, "Remove the spaces around it.")
                data.pop(name, None)
        self._set_preview(data.get("cron"), data.get("time_zone"))
        return data

    def _post_clean(self) -> None:
        """The model's own checks, then what jobs.scheduling checks on every save
        (cron, time zone, the task call), each error on its field."""
        super()._post_clean()
        try:
            firing.validate_schedule(self.instance)
        except ValidationError as exc:
            errors = exc.error_dict
            if {"args", "kwargs"} & set(self._errors):
                # A value that did not parse was not put on the instance: the call
                # cannot be judged, and its field already says why.
                errors = {f: e for f, e in errors.items() if f not in ("args", "kwargs")}
            if errors:
                self._update_errors(ValidationError(errors))

    def _set_preview(self, expression: str | None, time_zone: str | None) -> None:
        """Fill self.preview when both values are valid; validation reports them otherwise."""
        if not expression or not time_zone or "cron" not in self.fields:
            return
        try:
            expression = cron.validate_cron(expression)
            cron.validate_time_zone(time_zone)
        except ValidationError:
            return
        self.preview = cron.upcoming(expression, time_zone, PREVIEW_COUNT)
        self.fields["cron"].help_text = preview_html(self.preview, time_zone)


@admin.register(Schedule)
class ScheduleAdmin(GuardedAdmin):
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
        if obj.time_zone not in cron.known_time_zones():
            # A refused form leaves the typed zone on the instance: its field says why.
            return "-"
        return cron.format_run(obj.next_run_at, obj.time_zone)

    @admin.display(description="last error")
    def last_error_short(self, obj: Schedule) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def has_run_permission(self, request: HttpRequest) -> bool:
        return operations.can_run_schedules(request.user)

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict | None = None) -> HttpResponse:
        # A forged POST of the hidden action is refused, not ignored.
        if (request.method == "POST" and "run_now_selected" in request.POST.getlist("action")
                and not self.has_run_permission(request)):
            raise PermissionDenied(f"{request.user} may not run schedules")
        return super().changelist_view(request, extra_context)

    @admin.action(permissions=["run"], description="Run selected schedules now (once each)")
    def run_now_selected(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            try:
                job = operations.run_schedule_now(request.user, schedule)
            except JobsError as exc:
                self.message_user(request, f"{schedule.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{schedule.name}: enqueued job {job.pk}")

    # The guard first: the preview path does not reach GuardedAdmin's changeform_view.
    @method_decorator(refuses_unstorable_input)
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
