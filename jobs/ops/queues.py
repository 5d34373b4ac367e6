"""Queues as operators see them: depth, wait, throughput, running, paused; pause and resume.

Four grouped queries over indexes (Job.Meta.indexes), the pauses and the live
clusters, so the page costs the same with a million finished jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.utils import timezone

from jobs import database
from jobs.core import figures, queues
from jobs.models import Job, JobStatus, QueuePause
from jobs.ops import audit, serving

PERMISSION = "jobs.pause_queue"
THROUGHPUT_WINDOW = timedelta(hours=1)


@dataclass
class QueueRow:
    name: str
    depth: int = 0  # due now and waiting (jobs.core.figures)
    later: int = 0  # queued or retrying, not due yet
    oldest_wait: timedelta | None = None
    running: int = 0
    finished_last_hour: int = 0
    failed_last_hour: int = 0
    paused: QueuePause | None = None
    # Due jobs and no live cluster serving it (jobs.ops.serving); never when paused.
    unserved: bool = False

    @property
    def per_minute(self) -> float:
        return self.finished_last_hour / 60


def can_pause(user: Any) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(PERMISSION))


def overview(now: datetime | None = None) -> list[QueueRow]:
    """Every queue that has waiting, running or recently finished jobs, or is paused;
    each flagged when it has due jobs and no live cluster serves it."""
    waiting = figures.waiting_by_queue(now)  # due by the database's clock, unless given
    now = now or timezone.now()
    rows: dict[str, QueueRow] = {}

    def row(name: str) -> QueueRow:
        return rows.setdefault(name, QueueRow(name))

    for name, r in waiting.items():
        q = row(name)
        q.depth, q.later = r["due"], r["later"]
        q.oldest_wait = r["wait"]  # jobs.core.figures: paused queues' too
    for unserved in serving.state(now, waiting).unserved:
        row(unserved.name).unserved = True
    for r in (Job.objects.filter(status=JobStatus.RUNNING).order_by()
              .values("queue").annotate(n=Count("pk"))):
        row(r["queue"]).running = r["n"]
    finished = (Job.objects.filter(finished_at__gte=now - THROUGHPUT_WINDOW,
                                   status__in=[JobStatus.SUCCEEDED, JobStatus.DEAD])
                .order_by().values("queue", "status").annotate(n=Count("pk")))
    for r in finished:
        q = row(r["queue"])
        q.finished_last_hour += r["n"]
        if r["status"] == JobStatus.DEAD:
            q.failed_last_hour += r["n"]
    for pause in QueuePause.objects.select_related("paused_by"):
        row(pause.queue).paused = pause
    return sorted(rows.values(), key=lambda q: q.name)


def pause(user: Any, queue: str) -> bool:
    """Pause `queue` for `user` (jobs.pause_queue) and log it; False if already paused."""
    if not can_pause(user):
        raise PermissionDenied(f"{user} may not pause queues ({PERMISSION})")
    with database.atomic():
        changed = queues.pause(queue, by=user)
        if changed:
            audit.record("pause_queue", user, {"queue": queue}, done=1)
    return changed


def resume(user: Any, queue: str) -> bool:
    """Resume `queue` for `user` and log it; False if it was not paused."""
    if not can_pause(user):
        raise PermissionDenied(f"{user} may not resume queues ({PERMISSION})")
    with database.atomic():
        changed = queues.resume(queue)
        if changed:
            audit.record("resume_queue", user, {"queue": queue}, done=1)
    return changed
