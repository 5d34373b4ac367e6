"""How jobs are shown, the same on every screen (admin and dashboard).

One owner for what an operator reads: a status's colour and words, how long
something took, a job's progress, and a bounded preview of a long value. The
admin (`jobs.admin`), the dashboard (`dashboard`) and the status API
(`jobs.http`) draw from here and keep no copy of their own, so a job that says
"Waiting to retry, 5 min 3 s" on one screen says the same on the other.

Display only: how rows are found and counted is `jobs.ops.lookups`, the forms
that read an operator's edits are `jobs.ops.forms`, the request guard is
`jobs.ops.guards`, and the whole of a long value is `jobs.ops.values`. The
engine (`jobs.ops.bulk`, `jobs.ops.search`, ...) never imports this module:
an import-linter contract in pyproject.toml says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.core import serialization
from jobs.models import AttemptStatus, JobStatus, Step, StepStatus
from jobs.models.ids import short_id as short_id  # what lists show; the admin and tags read it here

# --- Statuses: colour for a glance, words for everyone ---------------------------------

# One palette for every screen.
STATUS_COLOURS = {
    JobStatus.QUEUED: "#6b7280",
    JobStatus.RUNNING: "#2563eb",
    JobStatus.RETRYING: "#d97706",
    JobStatus.SUCCEEDED: "#16a34a",
    JobStatus.DEAD: "#dc2626",
    JobStatus.CANCELLED: "#9ca3af",
}
# A value no choice knows (a row written by a newer version): shown as it is, in black.
UNKNOWN_COLOUR = "#000"

S = JobStatus
# Steps and attempts borrow the job colour that means the same thing, so red
# is "failed for good" and amber "will be tried again" wherever it shows.
STEP_AS_JOB = {
    StepStatus.PENDING: S.QUEUED, StepStatus.RUNNING: S.RUNNING,
    StepStatus.SUCCEEDED: S.SUCCEEDED, StepStatus.FAILED: S.DEAD,
}
ATTEMPT_AS_JOB = {
    AttemptStatus.RUNNING: S.RUNNING, AttemptStatus.SUCCEEDED: S.SUCCEEDED,
    AttemptStatus.FAILED: S.DEAD, AttemptStatus.TIMED_OUT: S.DEAD, AttemptStatus.LOST: S.DEAD,
    AttemptStatus.INTERRUPTED: S.RETRYING, AttemptStatus.CANCELLED: S.CANCELLED,
}
STATUS_KINDS: dict[str, tuple[type, dict]] = {
    "job": (JobStatus, {s: s for s in S}),
    "step": (StepStatus, STEP_AS_JOB),
    "attempt": (AttemptStatus, ATTEMPT_AS_JOB),
}


def status_info(status: str, kind: str = "job") -> tuple[str, str]:
    """(label, colour) of a job, step or attempt status.

    `kind` is "job", "step" or "attempt": the same value means different
    things ("running" is a job's or an attempt's), and each has its own label.
    An unknown value is shown as itself rather than raising in a template.
    """
    choices, as_job = STATUS_KINDS[kind]
    try:
        value = choices(status)
    except ValueError:
        return str(status), UNKNOWN_COLOUR
    return value.label, STATUS_COLOURS.get(as_job.get(value, S.QUEUED), UNKNOWN_COLOUR)


def status_dot(status: str, kind: str = "job", label: bool = True) -> SafeString:
    """A coloured dot that also says its status in words: visibly, or to screen readers.

    Colour is never the only signal: with `label` the words follow the dot;
    without (a pill whose text is a step name) the dot itself is an image
    with an aria-label and a tooltip. Everything is escaped by format_html.
    """
    text, colour = status_info(status, kind)
    if label:
        return format_html(
            '<span class="status status-{}" style="white-space:nowrap"><span class="dot" '
            'style="color:{}" aria-hidden="true">&#9679;</span> '
            '<span class="status-label">{}</span></span>',
            status, colour, text,
        )
    return format_html(
        '<span class="dot" style="color:{}" role="img" aria-label="{}" title="{}">&#9679;</span>',
        colour, text, text,
    )


# --- Durations ------------------------------------------------------------------------

NO_DURATION = "—"


def duration_text(delta: timedelta | None) -> str:
    """How long, to the precision that helps triage: '850 ms', '4.2 s', '42 s',
    '5 min 3 s', '2 h 10 min', '3 d 4 h'; a smaller unit of zero is left out ('5 min').

    Units are truncated, never rounded up, so 59.99 s is '59 s', not '60 s'.
    A negative span (clocks of two machines disagreeing) counts as zero;
    None (not started, not finished) is '—'.
    """
    if delta is None:
        return NO_DURATION
    micros = max(delta // timedelta(microseconds=1), 0)  # exact: no float rounding
    if micros < 1_000_000:
        return f"{micros // 1000} ms"
    if micros < 10_000_000:
        tenths = micros // 100_000
        return f"{tenths // 10}.{tenths % 10} s"
    seconds = micros // 1_000_000
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return _two_units(minutes, "min", secs, "s")
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return _two_units(hours, "h", mins, "min")
    days, hrs = divmod(hours, 24)
    return _two_units(days, "d", hrs, "h")


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big} {big_unit} {small} {small_unit}" if small else f"{big} {big_unit}"


# --- Progress -------------------------------------------------------------------------


def job_progress(steps: list[Step]) -> dict[str, Any]:
    """Overall progress: steps done of planned, plus the running step's own progress."""
    planned = len(steps)
    done = sum(1 for s in steps if s.status == StepStatus.SUCCEEDED)
    current = next((s for s in steps if s.status == StepStatus.RUNNING), None)
    fraction = (done + ((current.progress_fraction or 0) if current else 0)) / planned \
        if planned else None
    return {
        "steps_done": done,
        "steps_planned": planned,
        "fraction": round(fraction, 4) if fraction is not None else None,
        "current_step": current.name if current else None,
        "current_progress": (
            {"current": current.progress_current, "total": current.progress_total,
             "message": current.progress_message}
            if current and current.progress_total is not None else None
        ),
    }


# --- Long values: a bounded preview on the page, the whole value one click away -----------

PREVIEW_CHARS = 2_000  # the whole value is jobs.ops.values.value_text's


@dataclass(frozen=True)
class Preview:
    """The start of a long text and how many characters were left out."""

    text: str
    cut: int  # characters not shown

    @property
    def is_cut(self) -> bool:
        return self.cut > 0


def preview(text: str, limit: int = PREVIEW_CHARS) -> Preview:
    """The start of a long text, and how much was left out: a page with a 1 MB argument
    stays a page."""
    return Preview(text[:limit], max(len(text) - limit, 0))


def bounded_pre(text: str, url: str, css: str = "") -> SafeString:
    """A <pre> of at most PREVIEW_CHARS, escaped, with a link to the whole value if cut."""
    shown = preview(text)
    more = format_html(' <a href="{}">Show all ({} more characters)</a>', url, shown.cut) \
        if shown.is_cut else ""
    return format_html('<pre class="{}">{}</pre>{}', css, shown.text, more)


def json_text(value: Any) -> str:
    """A JSON value indented for reading, as the column stores it."""
    return serialization.pretty_json(value)
