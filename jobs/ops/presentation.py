"""How jobs are shown, the same on every screen (admin and dashboard).

One owner for what an operator reads: a status's colour and words, how long
something took, how many rows match (without counting a million), which time
windows a list offers, what a typed job id finds, and how an edit of a step's
limits is read. The admin (`jobs.admin`) and the dashboard (`dashboard`) both
import from here and keep no copy of their own, so a job that says "Waiting
to retry, 5 min 3 s" on one screen says the same on the other.

Nothing here imports the admin or the dashboard; both depend on this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django import forms
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.db.models.lookups import Exact
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.core import serialization
from jobs.core.serialization import check_text
from jobs.exceptions import UnstorableValue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, Step, StepStatus
from jobs.models.ids import SHORT, tail
from jobs.models.ids import short_id as short_id  # what lists show; the admin and tags read it here
from jobs.ops.access import can_read_job_data
from jobs.ops.operations import validate_limits

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


# --- Counts that stop at a cap --------------------------------------------------------

# Past this many matching rows the screens say "more than 10000" instead of
# counting: COUNT(*) over a million rows takes seconds, and nobody pages that far.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class CappedCount:
    """How many rows match, up to `cap`; `capped` when there are more."""

    value: int
    capped: bool
    cap: int

    @property
    def text(self) -> str:
        """'1234', or 'more than 10000' past the cap: the number never pretends."""
        return f"more than {self.cap}" if self.capped else str(self.value)

    def __str__(self) -> str:
        return self.text


def capped_count(queryset: QuerySet, cap: int | None = None) -> CappedCount:
    """Count the matching rows, stopping after cap + 1 of them.

    `SELECT COUNT(*) FROM (SELECT id ... LIMIT cap+1)`: the database walks at
    most cap + 1 index entries, however many rows match. `cap` defaults to
    COUNT_CAP, read at call time.
    """
    cap = COUNT_CAP if cap is None else cap
    counted = queryset.order_by().values("pk")[: cap + 1].count()
    return CappedCount(value=min(counted, cap), capped=counted > cap, cap=cap)


# --- Time windows ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    key: str  # in URLs: ?created=24h, ?last=24h
    label: str
    delta: timedelta

    def start(self, now: datetime | None = None) -> datetime:
        """The earliest time inside the window ending `now`."""
        return (now or timezone.now()) - self.delta


# The windows every time filter offers, each one range on an indexed timestamp.
TIME_RANGES: dict[str, TimeRange] = {
    r.key: r for r in (
        TimeRange("15m", "Last 15 minutes", timedelta(minutes=15)),
        TimeRange("1h", "Last hour", timedelta(hours=1)),
        TimeRange("24h", "Last 24 hours", timedelta(hours=24)),
        TimeRange("7d", "Last 7 days", timedelta(days=7)),
    )
}


def time_range_choices() -> list[tuple[str, str]]:
    """(key, label) pairs for a filter's choices, shortest window first."""
    return [(r.key, r.label) for r in TIME_RANGES.values()]


# --- Finding jobs by id ---------------------------------------------------------------

HEX = frozenset("0123456789abcdef")
TAIL_MATCHES = 100


def id_search(term: str, field: str = "pk") -> Q | None:
    """A Q for the job ids in `term`, or None when `term` holds no id.

    Whole UUIDs (one, or several separated by spaces or commas) match exactly.
    One run of 8+ hex digits (dashes allowed) matches the ids that start with
    it, as a range on `field`'s index (PostgreSQL's uuid and SQLite's hex text
    alike); exactly 8 also match the ids that end with them, which is what the
    lists show (`short_id`), on the index job_id_tail_idx. Never a LIKE over
    every row; shorter runs match too much to be useful and are refused.
    """
    tokens = term.replace(",", " ").split()
    if not tokens:
        return None
    try:
        return Q(**{f"{field}__in": [UUID(t) for t in tokens]})
    except ValueError:
        pass
    if len(tokens) != 1:
        return None
    digits = tokens[0].replace("-", "").lower()
    if not (SHORT <= len(digits) < 32 and set(digits) <= HEX):
        return None
    low, high = UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))
    by_prefix = Q(**{f"{field}__gte": low, f"{field}__lte": high})
    if len(digits) != SHORT:
        return by_prefix
    # What the lists show (short_id), on the index job_id_tail_idx.
    if field in ("pk", "id"):
        return by_prefix | Q(Exact(tail(field), digits))
    # A foreign key ("job_id"): the jobs first, or an OR with a subquery would scan
    # every attempt. Two random 32-bit tails rarely meet; TAIL_MATCHES bounds it.
    jobs = Job.objects.filter(Exact(tail("id"), digits)).values_list("pk", flat=True)
    return by_prefix | Q(**{f"{field}__in": list(jobs[:TAIL_MATCHES])})


# --- Reading an operator's edit of a step's limits ------------------------------------


class LimitsField(forms.JSONField):
    """Strict JSON text, with an error that says where it broke and which rule, never a 500.

    Parsing and checking are `serialization.parse_json`'s, so what the field
    returns reads back unchanged from the column. The Schedule admin's args and
    kwargs use it too; `what` names the value in errors.
    """

    MAX_CHARS = 10_000
    what = "limits"

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.MAX_CHARS:
            raise ValidationError(f"{self.what.capitalize()} are at most {self.MAX_CHARS:,} "
                                  "characters of JSON.", code="too_long")
        if not isinstance(value, str) or not value.strip():
            return super().to_python(value)
        try:
            # The text is bounded by MAX_CHARS; the byte limit only backs that up.
            stored = serialization.parse_json(value, self.what, 4 * self.MAX_CHARS + 16)
        except UnstorableValue as exc:
            raise ValidationError(f"{exc}.", code="invalid") from None
        # As Django's JSONField: a JSON string stays distinguishable from submitted text.
        return forms.fields.JSONString(stored) if isinstance(stored, str) else stored

    def bound_data(self, data: Any, initial: Any) -> Any:
        """Redisplay submitted text as it was typed: Django would parse it again and
        print the result, which fails for what to_python refuses (a huge integer,
        deep nesting) or cannot be rendered (an escaped lone surrogate)."""
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        return forms.fields.InvalidJSONInput(data)


class StepLimitsForm(forms.ModelForm):
    """Reads and checks an edit of `Step.limits`; the admin and the dashboard both use it.

    Parsing is LimitsField's, checking is `operations.validate_limits`'s. The
    form never writes: it leaves the instance as loaded, and the screens save
    through `operations.save_step_limits`, which checks the permission and
    writes the limits column only.
    """

    class Meta:
        model = Step
        fields = ["limits"]
        field_classes = {"limits": LimitsField}

    def clean_limits(self) -> dict[str, Any]:
        return validate_limits(self.instance.limits or {}, self.cleaned_data.get("limits"))

    def _post_clean(self) -> None:
        # A ModelForm would copy the value onto the instance here; saving is
        # save_step_limits' job alone, which validates against the stored limits.
        pass


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


# --- Requests: malformed input is a 400, never a database error ---------------------------

MAX_PARAMETER_CHARS = 100_000


def reject_unstorable_input(request: HttpRequest) -> None:
    """Raise BadRequest (HTTP 400) for any query or form value no screen could use.

    A NUL or a lone surrogate cannot reach PostgreSQL (the query fails, the
    page would be a 500), and no field takes 100,000 characters: refused once
    here, for every admin page, dashboard view and API call, instead of in
    each filter and form.
    """
    for source in (request.GET, request.POST):
        for key, values in source.lists():
            for text in (key, *values):
                if len(text) > MAX_PARAMETER_CHARS:
                    raise BadRequest(f"parameter {key[:40]!r} is longer than "
                                     f"{MAX_PARAMETER_CHARS:,} characters")
                try:
                    check_text(text, f"parameter {key[:40]!r}")
                except UnstorableValue as exc:
                    raise BadRequest(str(exc)) from None


def check_selected_ids(model: type, values: list[str]) -> None:
    """Raise BadRequest unless every selected id is a valid primary key of `model`
    (a forged admin action with `_selected_action=abc` would be a 500)."""
    pk = model._meta.pk
    for value in values:
        try:
            pk.to_python(value)
        except ValidationError:
            raise BadRequest(f"selected id {value[:40]!r} is not a valid {model.__name__} id"
                             ) from None


# --- Long values: a bounded preview on the page, the whole value one click away -----------

PREVIEW_CHARS = 2_000
# What a page may preview and link to in full, per kind of row: JSON values are shown
# indented, text as it is.
VALUE_FIELDS: dict[str, dict[str, bool]] = {
    "job": {"args": True, "kwargs": True, "result": True},
    "attempt": {"error_message": False, "traceback": False},
    "step": {"result": True, "error_message": False, "traceback": False, "limits": True},
}
_VALUE_MODELS = {"job": Job, "attempt": Attempt, "step": Step}


@dataclass(frozen=True)
class Preview:
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


def value_text(kind: str, pk: str, field: str, *, user: Any) -> str | None:
    """The whole value of an allowed field, as a page shows it; None if there is none.

    Every field served here is job data (arguments, results, errors, tracebacks,
    a step's limits), so `user` must pass `access.can_read_job_data`, whichever
    screen asks: PermissionDenied otherwise, before any row is read.
    """
    if not can_read_job_data(user):
        raise PermissionDenied("Reading a job's data needs the permission jobs.view_job.")
    is_json = VALUE_FIELDS.get(kind, {}).get(field)
    if is_json is None:
        return None
    model = _VALUE_MODELS[kind]
    try:
        row = model.objects.filter(pk=model._meta.pk.to_python(pk)).values(field).first()
    except ValidationError:
        return None
    if row is None:
        return None
    return json_text(row[field]) if is_json else row[field]


def json_text(value: Any) -> str:
    return serialization.pretty_json(value)
