"""The reservation column (`Job.reserved_until`) and its one owner.

A reservation is soft: a cluster that reserved a due job keeps other clusters
away from it until one of its workers claims it, and if the cluster dies first
the reservation simply expires, the job still truthfully `queued`. Every write
of the column goes through here: the broker's reservation statement
(`reserve`, its SQL the dialect's), a draining worker's give-back (`release`),
the resume of a paused queue (`release_queue`), and the transitions that end a
reservation in their own UPDATE (`RELEASED`: cancel, requeue, resume; the claim's
statement clears it too, jobs.dialect).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from jobs import conf, database, dialect
from jobs.core import statements
from jobs.exceptions import InvalidReservation
from jobs.models import Job, JobStatus

# The fields of an UPDATE that ends whatever reservation the job had.
RELEASED = {"reserved_until": None}


def reserve(queues: list[str], limit: int, seconds: float | None,
            oldest: int = 0) -> list[tuple[UUID, str]]:
    """One statement: pick due jobs of queues not paused and reserve them; (id, task name)
    pairs, best first."""
    sql, params = reservation(queues, limit, seconds, oldest)
    with statements.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # RETURNING does not keep the subquery's order; restore best-first. The longest-due
    # jobs of the share are sorted in too: where one sits in the hand does not change
    # how many of them a cluster takes, and last it holds up no better job of the hand.
    aging = conf.get().priority_aging_seconds
    rows.sort(key=lambda row: (-(row[1] * aging - _timestamp(row[2])), str(row[2])))
    return [(row[0] if isinstance(row[0], UUID) else UUID(row[0]), row[3]) for row in rows]


def reservation(queues: list[str], limit: int, seconds: float | None,
                oldest: int = 0) -> tuple[str, list]:
    """The reservation statement and its parameters: up to `limit` jobs, the first `oldest`
    of them the longest-due (smallest `run_after`, ties by id), the rest by effective
    priority.

    Only two small sets are ranked, never the whole backlog: the `limit` best by
    priority and the `limit` longest due (each read from its own partial index).
    The share is taken from the second, which aging needs anyway: the longest-due
    job is always a candidate, and once its age has outweighed any priority above
    its own it is taken by rank too.

    Due and the reservation's end are the database's clock (`statement_timestamp()`,
    the statement's own time: one reading for the whole statement), never this
    host's; on SQLite, which runs in this process, this host's clock is the
    database's.
    """
    if not 0 <= oldest <= limit:
        raise InvalidReservation(f"oldest must be from 0 to the limit ({limit}), got {oldest}")
    settings = conf.get()
    seconds = settings.reservation_seconds if seconds is None else seconds
    return dialect.current().reservation_sql(queues, limit, seconds, oldest,
                                             settings.priority_aging_seconds,
                                             database.get_autocommit())


def release(job_id: UUID | str) -> None:
    """Give a reserved-but-unclaimed job back to every cluster at once (draining worker)."""
    Job.objects.filter(pk=job_id, status__in=list(JobStatus.runnable())).update(**RELEASED)


def release_queue(queue: str) -> None:
    """Give back every reserved job of `queue` (a resumed queue: a pusher reserved them
    while it was paused, and the claim refused them)."""
    Job.objects.filter(queue=queue, status__in=JobStatus.runnable(),
                       reserved_until__isnull=False).update(**RELEASED)


def _timestamp(value: object) -> float:
    if isinstance(value, str):  # SQLite returns the stored text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
