"""The state of the system at a glance, for the admin home and the dashboard.

Every query here is answered from an index (see Job.Meta.indexes), so it
stays fast with millions of finished jobs in the table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from jobs.core.clock import database_now
from jobs.models import DeadLetter, Job, JobStatus


def status_counts() -> dict[str, int]:
    """Jobs per status, every status present (zero when none)."""
    counts = dict(Job.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return {status.value: counts.get(status.value, 0) for status in JobStatus}


def waiting_by_queue(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per queue with runnable jobs: how many are due now, how many wait for a later
    run_after, and when the oldest due one became due. One grouped query on the
    due-job partial index, however many jobs have finished. Due by `now`, else by
    the database's clock, as the broker decides (jobs.core.clock).

    The one owner of "waiting" and "due": every figure of waiting jobs (the
    overview, the queues page, unserved queues) is read from here, so they agree."""
    due = Q(run_after__lte=database_now(now))
    rows = (
        Job.objects.filter(status__in=JobStatus.runnable())
        .order_by().values("queue")
        .annotate(due=Count("pk", filter=due), later=Count("pk", filter=~due),
                  oldest=Min("run_after", filter=due))
    )
    return {r["queue"]: r for r in rows}


def queue_depths(now: datetime | None = None,
                 waiting: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per queue with queued or retrying jobs: how many are due now (`depth`), how many
    are scheduled for later (`later`), and how long the oldest due one has waited
    (None when none is due). `waiting`: `waiting_by_queue(now)`, when the caller has it."""
    now = now or timezone.now()
    waiting = waiting_by_queue(now) if waiting is None else waiting
    return [
        {"queue": name, "depth": r["due"], "later": r["later"],
         "oldest_age": now - r["oldest"] if r["oldest"] else None}
        for name, r in sorted(waiting.items())
    ]


def oldest_queued_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest due job of any queue has waited; None when none is due."""
    ages = [d["oldest_age"] for d in queue_depths(now) if d["oldest_age"] is not None]
    return max(ages, default=None)


def unresolved_dead_letters() -> int:
    return DeadLetter.objects.filter(resolved_at__isnull=True).count()


def finished_per_minute(minutes: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
    """Jobs that reached succeeded or dead in each of the last `minutes` minutes, oldest first."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    rows = (
        Job.objects.filter(finished_at__gte=start,
                           status__in=[JobStatus.SUCCEEDED, JobStatus.DEAD])
        .annotate(minute=TruncMinute("finished_at"))
        .order_by().values("minute", "status").annotate(n=Count("pk"))
    )
    buckets = {start + timedelta(minutes=i): {"succeeded": 0, "failed": 0}
               for i in range(minutes)}
    for r in rows:
        bucket = buckets.get(r["minute"])
        if bucket is not None:
            bucket["succeeded" if r["status"] == JobStatus.SUCCEEDED else "failed"] += r["n"]
    return [{"minute": m, **v} for m, v in buckets.items()]
