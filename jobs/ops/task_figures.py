"""Per task: runs, success rate, p50/p95 duration and failures, over the last hour and day.

Read from the jobs that finished in the window (the finished_at index) and
the jobs that failed in it (job_failure_idx), so the cost follows the
window's traffic, not the table's history. A run here is a finished job:
its duration is its last attempt's (started_at to finished_at), and a job
that retried and then succeeded counts as one success and, in `failures`,
as a job that failed in the window.
PostgreSQL computes the percentiles itself; elsewhere they are computed here
from at most MAX_SAMPLES durations per task (the newest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from jobs import dialect
from jobs.models import Job, JobStatus

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
MAX_SAMPLES = 5000


class Percentile(Aggregate):
    """percentile_cont(fraction) WITHIN GROUP (ORDER BY expression): PostgreSQL only."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass
class TaskFigures:
    task_name: str
    window: str
    runs: int = 0
    succeeded: int = 0
    dead: int = 0
    failures: int = 0  # jobs that failed in the window (dead, or retrying since)
    p50: timedelta | None = None
    p95: timedelta | None = None

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.dead
        return self.succeeded / finished if finished else None


_RUN_TIME = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())


def figures(window: str = "1h", task_name: str | None = None,
            now: datetime | None = None) -> list[TaskFigures]:
    """Figures of every task active in `window` (or of one), busiest first."""
    now = now or timezone.now()
    since = now - WINDOWS[window]
    finished = Job.objects.filter(finished_at__gte=since,
                                  status__in=[JobStatus.SUCCEEDED, JobStatus.DEAD])
    failed = Job.objects.filter(status__in=[JobStatus.DEAD, JobStatus.RETRYING],
                                last_failed_at__gte=since)
    if task_name is not None:
        finished, failed = finished.filter(task_name=task_name), failed.filter(task_name=task_name)
    out: dict[str, TaskFigures] = {}

    def row(name: str) -> TaskFigures:
        return out.setdefault(name, TaskFigures(name, window))

    postgres = dialect.current().supports_percentiles
    grouped = finished.order_by().values("task_name").annotate(
        runs=Count("pk"), ok=Count("pk", filter=Q(status=JobStatus.SUCCEEDED)),
        **({"p50": Percentile(_RUN_TIME, 0.5), "p95": Percentile(_RUN_TIME, 0.95)}
           if postgres else {}))
    for r in grouped:
        f = row(r["task_name"])
        f.runs, f.succeeded, f.dead = r["runs"], r["ok"], r["runs"] - r["ok"]
        if postgres:
            f.p50, f.p95 = r["p50"], r["p95"]
    for r in failed.order_by().values("task_name").annotate(n=Count("pk")):
        row(r["task_name"]).failures = r["n"]
    if not postgres:
        for name, values in _newest_run_times(finished).items():
            out[name].p50, out[name].p95 = _at(values, 0.5), _at(values, 0.95)
    return sorted(out.values(), key=lambda f: (-f.runs, f.task_name))


def _newest_run_times(finished: Any) -> dict[str, list[timedelta]]:
    """Each task's newest MAX_SAMPLES run times, sorted: one query for every task."""
    newest = Window(RowNumber(), partition_by=F("task_name"), order_by=F("finished_at").desc())
    rows = (finished.filter(started_at__isnull=False).annotate(rank=newest, run_time=_RUN_TIME)
            .filter(rank__lte=MAX_SAMPLES).values_list("task_name", "run_time"))
    by_task: dict[str, list[timedelta]] = {}
    for name, run_time in rows:
        if run_time is not None:
            by_task.setdefault(name, []).append(run_time)
    return {name: sorted(values) for name, values in by_task.items()}


def _at(values: list[timedelta], fraction: float) -> timedelta:
    """Linear interpolation between closest ranks, as percentile_cont does."""
    position = fraction * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)
