"""How the jobs admin draws a row: errors, JSON, progress, statuses and links.

Statuses, durations and previews are `jobs.ops.presentation`'s, shared with
the dashboard; what follows is only the admin's own, so a traceback or a
1 MB argument stays one bounded, escaped cell.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.models import Step
from jobs.ops.presentation import bounded_pre, duration_text, json_text, status_dot
from jobs.ops.step_runs import progress_text

ERROR_PREVIEW_CHARS = 80


def truncated(text: str, limit: int = ERROR_PREVIEW_CHARS) -> str:
    """The text on one line, cut at `limit` characters with an ellipsis: a list cell."""
    text = " ".join(text.split())  # a traceback-ish message on one line
    return text[:limit] + "…" if len(text) > limit else text


def value_url(kind: str, pk: Any, field: str) -> str:
    """The admin's page of a whole value (`jobs.ops.values.value_text`) a cell previews."""
    return reverse("admin:jobs_value", args=[kind, pk, field])


def pretty_json(value: Any, kind: str, pk: Any, field: str) -> SafeString:
    """Indented JSON, escaped (arguments and results are user data), bounded."""
    return bounded_pre(json_text(value), value_url(kind, pk, field), "jobs-json")


def error_details(obj: Any, kind: str) -> SafeString:
    """The error on one line, its traceback folded away until asked for (bounded)."""
    error_class, message, traceback = obj.error_class, obj.error_message, obj.traceback
    if not (error_class or message or traceback):
        return format_html("{}", "-")
    summary = truncated(f"{error_class}: {message}" if message else error_class, 300)
    if not traceback:
        return format_html("<code>{}</code>", summary)
    return format_html("<details><summary><code>{}</code></summary>{}</details>", summary,
                       bounded_pre(traceback, value_url(kind, obj.pk, "traceback")))


def step_progress(step: Step) -> str:
    """As the dashboard says it (jobs.ops.step_runs): "700/1200 row 700", figures once."""
    if step.progress_total is None:
        return "-"
    return progress_text(step.progress_current, step.progress_total, step.progress_message)


class StatusDurationColumns:
    """`status_display` and `duration_display` columns, as jobs.ops.presentation draws them.

    The dot and the duration look exactly as on the dashboard; `status_kind`
    ("job", "step" or "attempt") picks the labels.
    """

    status_kind = "job"

    @admin.display(description="status")
    def status_display(self, obj: Any) -> SafeString:
        return status_dot(obj.status, self.status_kind)

    @admin.display(description="duration")
    def duration_display(self, obj: Any) -> str:
        return duration_text(obj.duration)


def admin_link(obj: Model, text: str | None = None) -> SafeString:
    """A link to `obj`'s change page in the admin, escaped."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))
