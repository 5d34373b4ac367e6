"""Pausing a queue: clusters neither reserve nor claim its jobs while it is paused.

The pause is a row (`QueuePause`), read inside the broker's reservation and the
claim statement themselves, so every cluster honours it from its next
statement: no cache to expire, no message to miss. Jobs already running
finish. Resuming deletes the row and wakes the clusters that listen
(PostgreSQL), as a new job would.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError

from jobs import database, dialect
from jobs.core import reservations
from jobs.database import connection
from jobs.exceptions import InvalidQueueName
from jobs.models import QueuePause

# The wake-up channel and payload of jobs/migrations/0002's trigger: "<queue> <epoch>".
CHANNEL = "jobs_runnable"
MAX_QUEUE_NAME = 64  # Job.queue's length
QUEUE_NAME_RULE = (
    f"a non-empty string of at most {MAX_QUEUE_NAME} printable characters without "
    "surrounding spaces (no NUL, control or format character, lone surrogate or "
    "non-ASCII space)"
)


def check_name(queue: Any, argument: str = "queue") -> str:
    """`queue` as it will be stored, or InvalidQueueName naming `argument` and the rule.

    The one rule for queue names: enqueue(), @task(queue=...), the django.tasks
    backend's queue_name, pause/resume, qcluster --queues and the dashboard all
    check a name here, so a queue a job was put in can always be paused, served
    and filtered by the same name. Nothing is trimmed: " emails" is refused, not
    silently turned into another queue.
    """
    if (not isinstance(queue, str) or not queue or len(queue) > MAX_QUEUE_NAME
            or queue != queue.strip() or not queue.isprintable()):
        raise InvalidQueueName(f"{argument} must be {QUEUE_NAME_RULE}; got {shown(queue)}")
    return queue


def shown(value: Any, limit: int = 80) -> str:
    """A refused value as an error message can carry it: its repr cut to `limit`
    characters, and its type when it is not text. Never raises: the repr of an int
    past 4,300 digits does, and a hostile object's __repr__ may."""
    if isinstance(value, str):
        return repr(value[:limit]) + (f"… ({len(value)} characters)" if len(value) > limit
                                      else "")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any failure of a caller's __repr__
        text = "<unprintable>"
    return f"{text[:limit]}{'…' if len(text) > limit else ''} ({type(value).__name__})"


def paused() -> set[str]:
    return set(QueuePause.objects.values_list("queue", flat=True))


def pause(queue: str, *, by: Any = None) -> bool:
    """Pause `queue`; False if it already was (the first pause keeps its who and when)."""
    check_name(queue)
    try:
        with database.atomic():
            QueuePause.objects.create(queue=queue, paused_by=by if getattr(by, "pk", None)
                                      else None)
    except IntegrityError:
        return False
    return True


def resume(queue: str) -> bool:
    """Resume `queue`; False if it was not paused. Listening clusters wake at commit."""
    check_name(queue)
    with database.atomic():
        deleted, _ = QueuePause.objects.filter(queue=queue).delete()
        if deleted:
            # Jobs a pusher reserved while the queue was paused were refused at claim:
            # hand them back now rather than when their reservation runs out.
            reservations.release_queue(queue)
            notify_runnable(queue)
    return bool(deleted)


def notify_runnable(queue: str) -> None:
    """Tell listening clusters that `queue` may have due jobs (sent at commit)."""
    sql = dialect.current().notify_runnable_sql
    if sql is not None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [CHANNEL, queue])
