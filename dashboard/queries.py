"""Everything the dashboard asks the database, shaped for its templates.

Views stay thin; this module decides *how* the database is asked, so the
rules for a table with millions of jobs live in one place: filter only on
indexed columns (see Job.Meta.indexes), paginate by keyset on
(created_at, id) and never by OFFSET, cap counts, prefetch related rows.
Numbers that other screens show too come from `jobs.ops.stats`; progress from
`jobs.ops.presentation`, the capped count and the id search from
`jobs.ops.lookups` (as in the admin);
actions from `jobs.ops.operations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from jobs import conf
from jobs.core import figures
from jobs.core.serialization import pretty_json
from jobs.models import (
    Attempt,
    AttemptStatus,
    DeadLetter,
    Job,
    JobStatus,
    Schedule,
    Step,
    StepStatus,
)
from jobs.ops import failures, operations, search, serving, stats
from jobs.ops.lookups import CappedCount, capped_count
from jobs.ops.presentation import job_progress
from jobs.ops.step_runs import StepRun, attempts_by_step, step_runs, step_time
from jobs.scheduling.cron import format_run

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
RUNNING_SHOWN = 20
SCHEDULES_SHOWN = 8
FAILURE_GROUPS_SHOWN = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Columns the list shows: the JSON blobs (args, kwargs, result) stay in the database.
LIST_FIELDS = ("id", "task_name", "queue", "status", "attempt_count", "max_attempts",
               "created_at", "started_at", "finished_at", "run_after", "last_error")


# --- Overview ------------------------------------------------------------------------


def overview(now: datetime | None = None) -> dict[str, Any]:
    """The overview page's data: about ten small indexed queries, whatever the table size.

    Waiting jobs are read once (`figures.waiting_by_queue`, due by the database's clock)
    for both the queues panel and the unserved-queue warning, so they agree."""
    waiting = figures.waiting_by_queue(now)
    now = now or timezone.now()
    counts = stats.status_counts()
    running = list(
        Job.objects.filter(status=JobStatus.RUNNING)
        .order_by("-started_at")
        .only("id", "task_name", "queue", "started_at", "attempt_count", "max_attempts",
              "status", "created_at")
        .prefetch_related(Prefetch("steps", queryset=Step.objects.order_by("position", "id")))
        [:RUNNING_SHOWN]
    )
    for job in running:
        job.progress = job_progress(list(job.steps.all()))
    schedules = list(
        Schedule.objects.filter(enabled=True, next_run_at__isnull=False)
        .order_by("next_run_at")
        .only("id", "name", "task_name", "cron", "time_zone", "next_run_at")[:SCHEDULES_SHOWN]
    )
    for s in schedules:
        s.next_run_display = format_run(s.next_run_at, s.time_zone)
        s.next_run_in = s.next_run_at - now
    return {
        "now": now,
        "counts": [
            {"status": status.value, "label": status.label, "count": counts[status.value]}
            for status in JobStatus
        ],
        "queues": stats.queue_depths(now, waiting),
        "serving": serving.state(now, waiting),
        "default_queues": ",".join(conf.get().served_queues()),
        "dead_letters": stats.unresolved_dead_letters(),
        "failure_groups": failures.groups(limit=FAILURE_GROUPS_SHOWN, samples=False),
        "running": running,
        "running_more": counts[JobStatus.RUNNING] > len(running),
        "schedules": schedules,
        "chart": throughput_chart(stats.finished_per_minute(60, now)),
    }


@dataclass(frozen=True)
class Bar:
    minute: datetime
    succeeded: int
    failed: int
    x: float
    ok_y: float
    ok_h: float
    fail_y: float
    fail_h: float


def throughput_chart(rows: list[dict[str, Any]], width: int = 720,
                     height: int = 160) -> dict[str, Any]:
    """Stacked bars (succeeded below, failed above in red) as SVG geometry.

    Drawn on the server so the overview needs no chart library; the failed
    part sits on top so a spike of red stands out without reading numbers.
    """
    n = max(len(rows), 1)
    top = max((r["succeeded"] + r["failed"] for r in rows), default=0)
    scale = (height - 4) / top if top else 0
    slot = width / n
    bars = []
    for i, r in enumerate(rows):
        ok_h = r["succeeded"] * scale
        fail_h = r["failed"] * scale
        bars.append(Bar(
            minute=r["minute"], succeeded=r["succeeded"], failed=r["failed"],
            x=round(i * slot + 1, 2),
            ok_y=round(height - ok_h, 2), ok_h=round(ok_h, 2),
            fail_y=round(height - ok_h - fail_h, 2), fail_h=round(fail_h, 2),
        ))
    worst = max(rows, key=lambda r: r["failed"], default=None)
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "bar_width": round(max(slot - 2, 1), 2),
        "max": top,
        "succeeded": sum(r["succeeded"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "worst": worst if worst and worst["failed"] else None,
        "start": rows[0]["minute"] if rows else None,
        "end": rows[-1]["minute"] if rows else None,
    }


# --- Job list ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in the list, newest first: the last row's (created_at, id).

    Encoded as "<microseconds since epoch>_<uuid hex>": exact (no float
    rounding), URL-safe, and a malformed value is a clear ValueError.
    """

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        delta = self.created_at - EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}_{self.id.hex}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        micros, sep, hex_id = value.partition("_")
        if not sep or not micros.lstrip("-").isdigit():
            raise ValueError(f"malformed cursor {value!r}")
        try:
            created_at = EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            raise ValueError(f"cursor time out of range in {value!r}") from None
        return cls(created_at, UUID(hex_id))  # UUID raises ValueError itself


def filter_jobs(f: dict[str, Any], now: datetime | None = None) -> QuerySet[Job]:
    """Jobs matching cleaned filter values, newest first: `jobs.ops.search.matching`,
    the same definition a background action on every match uses."""
    return search.matching(f, now).only(*LIST_FIELDS).order_by("-created_at", "-id")


@dataclass
class Page:
    jobs: list[Job]
    next_cursor: str | None
    size: int
    count: CappedCount  # all matches, up to lookups.COUNT_CAP
    first_page: bool


def job_page(qs: QuerySet[Job], after: Cursor | None, size: int) -> Page:
    """One page after `after` (keyset), plus a capped count of all matches.

    The count is `lookups.capped_count`, which stops at the cap instead
    of walking every matching row.
    """
    matching = capped_count(qs)
    page_qs = qs
    if after is not None:
        # "<=" first gives the index a range to start from; the OR breaks ties by id.
        page_qs = qs.filter(created_at__lte=after.created_at).filter(
            Q(created_at__lt=after.created_at) | Q(id__lt=after.id)
        )
    rows = list(page_qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = Cursor(rows[-1].created_at, rows[-1].id).encode() if more else None
    return Page(jobs=rows, next_cursor=next_cursor, size=size, count=matching,
                first_page=after is None)


# --- Job detail ----------------------------------------------------------------------

def actions_for(user: Any, job: Job | None = None,
                has_open_letter: bool = False) -> list[operations.Action]:
    """Actions the user may use; for one job, only those that can change it."""
    if job is None:
        return operations.available(user)
    return operations.available_for_job(user, job.status, has_open_letter)


@dataclass
class StepView:
    step: Step
    attempts: list[Attempt] = field(default_factory=list)
    limits_text: str = ""
    limits_errors: list[str] = field(default_factory=list)
    # The step's table of attempts and its time: jobs.ops.step_runs, one source for both.
    runs: list[StepRun] = field(default_factory=list)
    time: str = ""

    @property
    def expanded(self) -> bool:
        """Open by default where an operator has something to read or fix."""
        return self.step.status == StepStatus.FAILED or bool(self.limits_errors)


@dataclass
class JobDetail:
    job: Job
    steps: list[StepView]
    other_attempts: list[Attempt]  # ended before, between or after steps
    attempts: list[Attempt]
    progress: dict[str, Any]
    open_dead_letter: DeadLetter | None
    now: datetime = field(default_factory=timezone.now)

    @property
    def terminal(self) -> bool:
        return self.job.is_terminal

    @property
    def running_between_steps(self) -> list[Attempt]:
        """The running attempt while it is in none of the steps (before the first,
        between two): the page's "Current attempt", not a leftover."""
        return [a for a in self.other_attempts if a.status == AttemptStatus.RUNNING]

    @property
    def ended_outside_steps(self) -> list[Attempt]:
        return [a for a in self.other_attempts if a.status != AttemptStatus.RUNNING]


def job_detail(job_id: UUID | str) -> JobDetail | None:
    """A job with its steps, attempts and open dead letter: four queries, any size."""
    job = Job.objects.select_related("enqueued_by").filter(pk=job_id).first()
    if job is None:
        return None
    steps = list(Step.objects.filter(job=job).order_by("position", "id"))
    attempts = list(Attempt.objects.filter(job=job).order_by("-number"))
    letter = DeadLetter.objects.filter(job=job, resolved_at__isnull=True).first()
    by_step = attempts_by_step(steps, attempts)
    placed = {a.pk for listed in by_step.values() for a in listed}
    now = timezone.now()
    views = [StepView(step=s, attempts=by_step.get(s.pk, []), limits_text=_json(s.limits),
                      runs=step_runs(s, by_step.get(s.pk, []), now), time=step_time(s, now))
             for s in steps]
    return JobDetail(
        job=job,
        steps=views,
        other_attempts=[a for a in attempts if a.pk not in placed],
        attempts=attempts,
        progress=job_progress(steps),
        open_dead_letter=letter,
        now=now,
    )


def _json(value: Any) -> str:
    return pretty_json(value) if value else ""
