"""Which due jobs a cluster takes next, and the one statement that reserves them.

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

from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.utils import timezone
from django_q.conf import Conf

from jobs import conf, database
from jobs.core import statements
from jobs.database import connection
from jobs.exceptions import InvalidReservation
from jobs.models import Job, JobStatus, QueuePause
from jobs.models.job import DUE_INDEX


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
    return conf.SQLITE_BULK if connection.vendor == "sqlite" else conf.POSTGRESQL_BULK


def oldest_share(reserved: int, limit: int, every: int | None = None) -> int:
    """How many of the next `limit` jobs a cluster reserves, after `reserved` so far, are
    its longest-due ones: those whose number is a multiple of `every`.

    Counted per job, not per statement, so the share is the same whether a cluster
    reserves one job a time or sixteen.
    """
    every = conf.get().oldest_first_every if every is None else every
    return (reserved + limit) // every - reserved // every


def _epoch(column: str) -> str:
    """SQL for a timestamp column in seconds since the epoch, on either database."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


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
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        now_sql, now_params = "statement_timestamp()", []
        until_sql, until_params = "statement_timestamp() + %s::interval", [
            timedelta(seconds=seconds)]
    else:
        now = timezone.now()
        now_sql, now_params = "%s", [adapt(now)]
        until_sql, until_params = "%s", [adapt(now + timedelta(seconds=seconds))]
    table = connection.ops.quote_name(Job._meta.db_table)
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    in_queues = ", ".join(["%s"] * len(queues))
    # Status literals are inlined (they are constants) so PostgreSQL can match
    # the partial indexes job_due_idx and job_due_age_idx.
    pauses = connection.ops.quote_name(QueuePause._meta.db_table)
    due = (
        f"status IN ('{JobStatus.QUEUED.value}', '{JobStatus.RETRYING.value}')"
        f" AND queue IN ({in_queues}) AND run_after <= {now_sql}"
        f" AND (reserved_until IS NULL OR reserved_until < {now_sql})"
        f" AND queue NOT IN (SELECT queue FROM {pauses})"
    )
    # A reservation is soft (it only keeps other clusters away for a while), so its
    # commit need not wait for the WAL flush: lost in a server crash, it changes nothing.
    asynchronous = (
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous"
        if connection.vendor == "postgresql" and database.get_autocommit() else ""
    )
    # Each candidate set is read (and locked) straight off its partial index, and
    # only the chosen rows are looked up again, by primary key. An earlier form
    # looked the candidates up again with `id IN (...) AND <due>`, and PostgreSQL,
    # with statistics taken while the table was empty (a queue table often is),
    # read every job of the queue for it: 6 ms per reservation instead of 0.2
    # with a backlog of 6,000. Locking both sets (up to twice `limit` rows) keeps
    # other clusters off the unchosen ones only until this statement commits.
    chosen = "= ANY(ARRAY(SELECT id FROM chosen))" if connection.vendor == "postgresql" \
        else "IN (SELECT id FROM chosen)"
    # SQLite has no statistics to tell the two partial indexes apart: for `best` it
    # took job_due_age_idx and sorted every due job by priority, inside the write
    # transaction every worker waits on (1 ms with a backlog of 5,000). Named here,
    # it reads the first `limit` entries of job_due_idx, as PostgreSQL does.
    by_priority = f" INDEXED BY {DUE_INDEX}" if connection.vendor == "sqlite" else ""
    # The share is ranked first by a CASE, not a window function: PostgreSQL allows
    # none beside FOR UPDATE, and `oldest` is the statement's only sorted read of age.
    sql = (
        f"WITH best AS (SELECT id, priority, run_after FROM {table}{by_priority} WHERE {due}"
        f"  ORDER BY priority DESC, run_after LIMIT %s{skip_locked}),"
        f" oldest AS (SELECT id, priority, run_after FROM {table} WHERE {due}"
        f"  ORDER BY run_after LIMIT %s{skip_locked}),"
        " share AS (SELECT id FROM oldest ORDER BY run_after, id LIMIT %s),"
        " chosen AS (SELECT id FROM (SELECT * FROM best UNION SELECT * FROM oldest) AS c"
        "  ORDER BY CASE WHEN id IN (SELECT id FROM share) THEN 0 ELSE 1 END,"
        f"  priority * %s - {_epoch('run_after')} DESC, run_after LIMIT %s)"
        f" UPDATE {table} SET reserved_until = {until_sql}{asynchronous} WHERE id {chosen}"
        " RETURNING id, priority, run_after, task_name"
    )
    due_params = [*queues, *now_params, *now_params]
    params = [*due_params, limit, *due_params, limit, oldest, settings.priority_aging_seconds,
              limit, *until_params]
    return sql, params


def _timestamp(value: object) -> float:
    if isinstance(value, str):  # SQLite returns the stored text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
