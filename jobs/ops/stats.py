"""The state of the system at a glance, for the admin home and the dashboard.

Every query here is answered from an index (see Job.Meta.indexes), so it
stays fast with millions of finished jobs in the table. The figures of waiting
jobs (depth, oldest due wait) are owned by jobs.core.figures; this module names
them for the pages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from jobs.core import figures
from jobs.models import DeadLetter, Job, JobStatus


def status_counts() -> dict[str, int]:
    """Jobs per status, every status present (zero when none)."""
    counts = dict(Job.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return {status.value: counts.get(status.value, 0) for status in JobStatus}


def queue_depths(now: datetime | None = None,
                 waiting: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per queue with queued or retrying jobs: how many are due now (`depth`), how many
    are scheduled for later (`later`), and how long the oldest due one has waited
    (None when none is due). `waiting`: `figures.waiting_by_queue(now)`, when the caller has it."""
    waiting = figures.waiting_by_queue(now) if waiting is None else waiting
    return [
        {"queue": name, "depth": r["due"], "later": r["later"], "oldest_age": r["wait"]}
        for name, r in sorted(waiting.items())
    ]


def oldest_queued_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest due job of any queue (paused ones too) has waited; None when
    none is due."""
    return figures.oldest_wait(figures.waiting_by_queue(now))


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
