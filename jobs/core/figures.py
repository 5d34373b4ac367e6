"""The figures of waiting jobs, each with one owner: queue depth, the oldest due wait,
and the planner's row estimate.

Before this module each was computed where it was shown (/healthz, /metrics, the
overview, the queues page, the broker's `queue_size`, the admin's paginator), and
they disagreed: one left paused queues out, one judged "due" by the host's clock,
another measured the wait from it. Everything that shows one of these figures
reads it here, so two pages never give two numbers for one fact.

The rules, the same for every consumer:

- A job is *due* when it is queued or retrying and its `run_after` has passed by
  the database's clock (`jobs.core.clock`), as the broker decides what to reserve.
  A job scheduled for later is counted apart (`later`), never in the depth.
- A queue's *depth* is its due jobs; its *oldest due wait* is how long the oldest
  of them has waited, measured by the same clock reading that judged it due (one
  statement: the two never disagree by the time between two queries).
- Paused queues are reported like any other: their jobs exist and wait, and a
  figure that hid them would say a queue is empty when it is not. Only a
  *judgement* leaves them out: /healthz's wait limit and the unserved-queue
  warning (`jobs.ops.serving`) do not count a wait an operator chose, and the
  health report says which wait it judged (`oldest_unpaused_wait_seconds`) beside
  the figure everyone shows (`oldest_due_wait_seconds`).
- The row estimate is PostgreSQL's `pg_class.reltuples` (kept by autovacuum and
  ANALYZE; 0 when the table was never analysed), never a scan; None on other
  databases, where the caller counts (SQLite tables are small by nature).

In jobs.core so the worker (the broker's `queue_size`) and ops both import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    Model,
    Q,
    QuerySet,
)

from jobs import dialect
from jobs.core.clock import database_now
from jobs.database import connection
from jobs.models import Job, JobStatus


def due_jobs(queues: Iterable[str] | None = None, now: datetime | None = None) -> QuerySet:
    """Queued or retrying jobs whose run_after has passed: by `now` when given (tests,
    one reading shared with other figures), else by the database's clock."""
    qs = Job.objects.filter(status__in=JobStatus.runnable(), run_after__lte=database_now(now))
    return qs if queues is None else qs.filter(queue__in=list(queues))


def depth(queues: Iterable[str] | None = None, now: datetime | None = None, *,
          unreserved: bool = False) -> int:
    """How many due jobs wait in `queues` (all queues when None), paused ones included.

    `unreserved`: only those no cluster has reserved yet, django-q2's `queue_size`
    (the broker's: a reserved job is already on its way to a worker, its `lock_size`)."""
    qs = due_jobs(queues, now)
    if unreserved:
        qs = qs.exclude(reserved_until__gte=database_now(now))
    return qs.count()


def waiting_by_queue(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per queue with runnable jobs: `due` (its depth), `later` (runnable, not due yet),
    `oldest` (the oldest due job's run_after) and `wait` (how long it has waited; None
    when nothing is due). One grouped query on the due-job partial index, however
    many jobs have finished; due and wait read the same clock in it."""
    clock = database_now(now)
    due = Q(run_after__lte=clock)
    waited = ExpressionWrapper(clock - F("run_after"), output_field=DurationField())
    rows = (
        Job.objects.filter(status__in=JobStatus.runnable())
        .order_by().values("queue")
        .annotate(due=Count("pk", filter=due), later=Count("pk", filter=~due),
                  oldest=Min("run_after", filter=due), wait=Max(waited, filter=due))
    )
    return {r["queue"]: _exact(r) for r in rows}


def _exact(row: dict[str, Any]) -> dict[str, Any]:
    # A job due the very instant of the reading has waited nothing, not a negative time.
    if row["wait"] is not None:
        row["wait"] = max(row["wait"], timedelta(0))
    return row


def oldest_wait(waiting: dict[str, dict[str, Any]],
                leave_out: Iterable[str] = ()) -> timedelta | None:
    """The longest wait of `waiting`'s queues but those in `leave_out` (a judgement's
    paused queues); None when none of them has a due job."""
    left_out = set(leave_out)
    return max((r["wait"] for name, r in waiting.items()
                if r["wait"] is not None and name not in left_out), default=None)


def row_estimate(model: type[Model], using: str | None = None) -> int | None:
    """The planner's estimate of `model`'s rows on PostgreSQL (0 if never analysed or
    absent); None on other databases, where the caller counts."""
    db = connections[using] if using else connection
    estimate = dialect.of(db).row_estimate(model._meta.db_table, db)
    if estimate is None and not isinstance(dialect.of(db), dialect.PostgreSQL):
        return None
    return max(estimate or 0, 0)
