"""Status dots and durations, rendered the same way on every dashboard page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.core import serialization
from jobs.models import AttemptStatus, JobStatus, StepStatus
from jobs.ops.presentation import STATUS_COLOURS

register = template.Library()

S = JobStatus
# Job colours come from the admin, so a status looks the same on both screens;
# steps and attempts borrow the job colour that means the same thing.
STEP_AS_JOB = {
    StepStatus.PENDING: S.QUEUED, StepStatus.RUNNING: S.RUNNING,
    StepStatus.SUCCEEDED: S.SUCCEEDED, StepStatus.FAILED: S.DEAD,
}
ATTEMPT_AS_JOB = {
    AttemptStatus.RUNNING: S.RUNNING, AttemptStatus.SUCCEEDED: S.SUCCEEDED,
    AttemptStatus.FAILED: S.DEAD, AttemptStatus.TIMED_OUT: S.DEAD, AttemptStatus.LOST: S.DEAD,
    AttemptStatus.INTERRUPTED: S.RETRYING, AttemptStatus.CANCELLED: S.CANCELLED,
}
KINDS = {"job": (JobStatus, {s: s for s in S}), "step": (StepStatus, STEP_AS_JOB),
         "attempt": (AttemptStatus, ATTEMPT_AS_JOB)}


def status_info(status: str, kind: str = "job") -> tuple[str, str]:
    """(label, colour) of a job, step or attempt status."""
    choices, as_job = KINDS[kind]
    try:
        value = choices(status)
    except ValueError:
        return status, "#000"
    return value.label, STATUS_COLOURS.get(as_job.get(value, S.QUEUED), "#000")


@register.simple_tag
def status_dot(status: str, kind: str = "job", label: bool = True) -> SafeString:
    """A coloured dot that also says its status in words: visibly, or to screen readers.

    With label=False (pills, where the step name is the text) the dot itself
    carries role="img" and an aria-label, so colour is never the only signal.
    """
    text, colour = status_info(status, kind)
    if label:
        return format_html(
            '<span class="status status-{}"><span class="dot" style="color:{}" '
            'aria-hidden="true">&#9679;</span> <span class="status-label">{}</span></span>',
            status, colour, text,
        )
    return format_html(
        '<span class="dot" style="color:{}" role="img" aria-label="{}" title="{}">&#9679;</span>',
        colour, text, text,
    )


@register.filter
def duration(value: timedelta | None) -> str:
    """Short human duration: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if value is None:
        return "—"
    secs = value.total_seconds()
    if secs < 0:
        return "now"
    if secs < 1:
        return f"{secs * 1000:.0f} ms"
    if secs < 60:
        return f"{secs:.1f} s"
    minutes, s = divmod(int(secs), 60)
    if minutes < 60:
        return f"{minutes} min {s} s"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {m} min"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h"


@register.filter
def pretty_json(value: Any) -> str:
    """JSON for a <pre>; the template still escapes it."""
    return serialization.pretty_json(value)


@register.filter
def percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction * 100:.0f}"


@register.filter
def between(end: Any, start: Any) -> timedelta | None:
    """end - start for two datetimes, None when either is missing."""
    return end - start if end and start else None
