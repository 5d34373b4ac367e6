"""Pausing a queue: clusters neither reserve nor claim its jobs while it is paused.

The pause is a row (`QueuePause`), read inside the broker's reservation and the
claim statement themselves, so every cluster honours it from its next
statement: no cache to expire, no message to miss. Jobs already running
finish. Resuming deletes the row and wakes the clusters that listen
(PostgreSQL), as a new job would.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction

from jobs.exceptions import InvalidQueueName
from jobs.models import Job, JobStatus, QueuePause

# The wake-up channel and payload of jobs/migrations/0002's trigger: "<queue> <epoch>".
CHANNEL = "jobs_runnable"
MAX_QUEUE_NAME = 64  # Job.queue's length


def check_name(queue: Any) -> str:
    """A queue name as stored, or InvalidQueueName naming the rule."""
    if not isinstance(queue, str) or not queue.strip() or queue != queue.strip():
        raise InvalidQueueName(f"queue must be a non-empty name without surrounding spaces, "
                               f"got {queue!r}")
    if len(queue) > MAX_QUEUE_NAME:
        raise InvalidQueueName(f"queue is at most {MAX_QUEUE_NAME} characters, got {len(queue)}")
    return queue


def paused() -> set[str]:
    return set(QueuePause.objects.values_list("queue", flat=True))


def pause(queue: str, *, by: Any = None) -> bool:
    """Pause `queue`; False if it already was (the first pause keeps its who and when)."""
    check_name(queue)
    try:
        with transaction.atomic():
            QueuePause.objects.create(queue=queue, paused_by=by if getattr(by, "pk", None)
                                      else None)
    except IntegrityError:
        return False
    return True


def resume(queue: str) -> bool:
    """Resume `queue`; False if it was not paused. Listening clusters wake at commit."""
    check_name(queue)
    with transaction.atomic():
        deleted, _ = QueuePause.objects.filter(queue=queue).delete()
        if deleted:
            # Jobs a pusher reserved while the queue was paused were refused at claim:
            # hand them back now rather than when their reservation runs out.
            Job.objects.filter(queue=queue, status__in=JobStatus.runnable(),
                               reserved_until__isnull=False).update(reserved_until=None)
            notify_runnable(queue)
    return bool(deleted)


def notify_runnable(queue: str) -> None:
    """Tell listening clusters that `queue` may have due jobs (sent at commit)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # No job named: listening clusters reserve the queue's best due jobs.
            cursor.execute("SELECT pg_notify(%s, json_build_object("
                           "'q', %s::text, 'at', extract(epoch FROM now()))::text)",
                           [CHANNEL, queue])
