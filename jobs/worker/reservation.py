"""Which due jobs a cluster takes next (the statement that reserves them: jobs.core.reservations).

Two rules share every cluster's reservations (docs/architecture.md, "Priority and
aging"). Most jobs are taken best first: the highest effective priority, a job's
priority plus one point for every JOBS['PRIORITY_AGING_SECONDS'] it has been due.
One job in every JOBS['OLDEST_FIRST_EVERY'] a cluster reserves is instead the
longest-due one, whatever its priority. Aging alone bounded a wait by the priority
spread (-1000 against 1000 at 10 s a point: 20,000 s); the share bounds it by the
jobs due before it, so a job with k of them ahead is taken within (k + 1) x N jobs
reserved by a cluster that serves its queue.
"""

from __future__ import annotations

from uuid import UUID

from django_q.conf import Conf

from jobs import conf, dialect
from jobs.core.reservations import reservation, reserve

__all__ = ["oldest_share", "reservation", "reservation_size", "reserve", "reserve_due"]


def reserve_due(queues: str | list[str] | tuple[str, ...], limit: int, *,
                seconds: float | None = None, oldest: int = 0) -> list[UUID]:
    """Reserve up to `limit` due jobs of `queues`, the `oldest` longest-due among them and
    the rest best first; return their ids, best first."""
    return [pk for pk, _ in reserve([queues] if isinstance(queues, str) else list(queues),
                                    limit, seconds, oldest)]


def reservation_size() -> int:
    """Jobs reserved per statement: Q_BULK if the project set it, else by database.

    On SQLite every reservation is a write transaction, and the workers' claims
    and successes wait for SQLite's one write lock behind it: 16 a time drained
    about a third more than 4 (900 and 818 against 610 and 644 jobs/s, two
    interleaved runs). On PostgreSQL 2, 4 and 16 measured the same, and a
    smaller hand keeps a cluster from holding jobs that another, idle one could
    run, or that a more urgent job must wait behind: 2, with django-q2's local
    queue of 1, lets it start with the next free workers.
    """
    if Conf.BULK:
        return Conf.BULK
    return dialect.current().bulk_size


def oldest_share(reserved: int, limit: int, every: int | None = None) -> int:
    """How many of the next `limit` jobs a cluster reserves, after `reserved` so far, are
    its longest-due ones: those whose number is a multiple of `every`.

    Counted per job, not per statement, so the share is the same whether a cluster
    reserves one job a time or sixteen.
    """
    every = conf.get().oldest_first_every if every is None else every
    return (reserved + limit) // every - reserved // every
