"""What the engine asks of its database: the interface every dialect answers.

The engine above (jobs.core and up) never looks at `connection.vendor`: it asks
the dialect of the engine's connection (`jobs.dialect.current()`) for a SQL
text (`claim_sql`, `reservation_sql`...), a capability (`clock_in_statement`,
`listens`...) or a size (`bulk_size`). `postgresql.py` and `sqlite.py` answer
for the two supported databases. This class answers with the portable forms
(plain SQL, this process's clock, no extras): what the engine did on any other
database, which jobs.checks refuses (jobs.E012), so it only serves tests that
take the portable path on purpose.

Below jobs.core: it may import jobs.models, jobs.database, jobs.conf and
jobs.exceptions, nothing of the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.db.models import Model, Q
from django.utils import timezone

from jobs import conf, database
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, QueuePause

# Where a claim starts from (jobs.core.transitions.CLAIM's sources).
CLAIMABLE = frozenset({JobStatus.QUEUED, JobStatus.RETRYING})

# Table names from the models, as everywhere else (a project may not keep the defaults).
JOB, ATTEMPT = Job._meta.db_table, Attempt._meta.db_table
PAUSE = QueuePause._meta.db_table  # a paused queue's jobs are not claimed (jobs.core.queues)


def columns(model: type[Model]) -> str:
    """The model's columns, in field order, for a RETURNING or SELECT list."""
    quote = database.current().ops.quote_name
    return ", ".join(quote(f.column) for f in model._meta.concrete_fields)


# {now} and {lease}: on PostgreSQL the statement's own time (the database's clock)
# and that plus the lease; elsewhere parameters from this process's clock (its own).
CLAIM_JOB_SQL = f"""
UPDATE {JOB} SET status = '{JobStatus.RUNNING.value}',
    attempt_count = attempt_count + 1, last_attempt_number = last_attempt_number + 1,
    started_at = {{now}}, finished_at = NULL, reserved_until = NULL,
    lease_owner = %(owner)s, lease_expires_at = {{lease}}, heartbeat_at = {{now}}
WHERE id = %(id)s AND status IN ({", ".join(f"'{s.value}'" for s in sorted(CLAIMABLE))})
  AND run_after <= {{now}}
  AND NOT EXISTS (SELECT 1 FROM {PAUSE} WHERE {PAUSE}.queue = {JOB}.queue)
RETURNING {{columns}}
"""
PYTHON_CLOCK = {"now": "%(now)s", "lease": "%(lease)s"}
OPEN_ATTEMPT_SQL = f"""
INSERT INTO {ATTEMPT} (job_id, number, status, started_at, worker_host, worker_pid,
                        worker_id, worker_cluster, error_class, error_message, traceback)
VALUES (%(id)s, %(number)s, '{AttemptStatus.RUNNING.value}', %(now)s, %(host)s, %(pid)s,
        %(worker_id)s, %(worker_cluster)s, '', '', '')
RETURNING id
"""

# {now} and {duration}: as in the claim.
SUCCEED_JOB_SQL = f"""
UPDATE {JOB} SET status = '{JobStatus.SUCCEEDED.value}', result = %(result)s,
    finished_at = {{now}}, last_error = '', lease_owner = '', lease_expires_at = NULL
WHERE id = %(id)s AND status = '{JobStatus.RUNNING.value}' AND last_attempt_number = %(number)s
RETURNING id
"""
SUCCEED_ATTEMPT_SQL = f"""
UPDATE {ATTEMPT} SET status = '{AttemptStatus.SUCCEEDED.value}', finished_at = {{now}},
    duration = {{duration}}, retry_at = NULL
WHERE id = %(attempt)s AND status = '{AttemptStatus.RUNNING.value}'{{only_if_job_moved}}
RETURNING id
"""

RENEW_SQL = (
    f"UPDATE {JOB} SET lease_expires_at = {{lease}}, heartbeat_at = {{now}}"
    f" WHERE id = %(id)s AND status = '{JobStatus.RUNNING.value}'"
    " AND last_attempt_number = %(number)s RETURNING cancel_requested_at"
)


class Dialect:
    """One database's SQL and differences; see the module docstring."""

    vendor = ""
    # The database's clock is read inside the statement (statement_timestamp()); False:
    # the database runs in this process (SQLite), whose clock is the database's.
    clock_in_statement = False
    # The claim and the success each in one statement (data-modifying CTEs); False: the
    # same writes in one short transaction.
    one_statement_writes = False
    # Clusters wait on LISTEN/NOTIFY for new jobs (jobs.worker.wakeup); False: they poll.
    listens = False
    # The worker's hot statements may be sent with server-side parameters and prepared
    # (jobs.core.statements), where the driver can.
    server_binds = False
    # A worker's sessions are named, bounded and ended by the reaper (jobs.worker.sessions);
    # the connection has a socket a watchdog can cut.
    manages_sessions = False
    # An atomic task's BEGIN is held back to its first statement (one-writer databases).
    defers_begin = False
    # The clusters' maintenance thread checkpoints the WAL (SQLite).
    checkpoints = False
    # percentile_cont in SQL (jobs.ops.task_figures); False: computed in Python.
    supports_percentiles = False
    # An args filter may hold nested values (JSON containment) (jobs.ops.search).
    nested_args_filter = False
    # A server-side cursor reads a snapshot the reader's own writes do not disturb
    # (the admin's bulk actions stream ids from it).
    streams_snapshots = False
    # No NOTIFY on a database without LISTEN.
    notify_runnable_sql: str | None = None
    # The database's clock by a statement of its own; None: this process's clock is it.
    read_now_sql: str | None = None

    def __str__(self) -> str:
        return self.vendor or "portable"

    def __repr__(self) -> str:
        return f"<dialect {self}>"

    # --- Sizes ---------------------------------------------------------------------

    @property
    def bulk_size(self) -> int:
        """Jobs one reservation statement takes (unless the project set Q_BULK)."""
        return conf.POSTGRESQL_BULK

    # --- The clock -----------------------------------------------------------------

    def epoch_sql(self, column: str) -> str:
        """SQL for a timestamp column in seconds since the epoch."""
        return f"((julianday({column}) - 2440587.5) * 86400.0)"

    def _reservation_clock(self, seconds: float) -> tuple[str, list, str, list]:
        """(now SQL, its params, reservation end SQL, its params)."""
        adapt = database.current().ops.adapt_datetimefield_value
        now = timezone.now()
        return "%s", [adapt(now)], "%s", [adapt(now + timedelta(seconds=seconds))]

    # --- The claim, the success, the lease -------------------------------------------

    @cached_property
    def claim_job_sql(self) -> str:
        """The claim's UPDATE, by this process's clock (%(now)s, %(lease)s)."""
        return CLAIM_JOB_SQL.format(columns=columns(Job), **PYTHON_CLOCK)

    open_attempt_sql = OPEN_ATTEMPT_SQL

    def claim_sql(self, autocommit: bool) -> str:
        """The claim and its attempt in one statement (one_statement_writes only)."""
        raise NotImplementedError(f"{self!r} claims in one transaction")

    succeed_job_sql = SUCCEED_JOB_SQL.format(now="%(now)s")
    succeed_attempt_sql = SUCCEED_ATTEMPT_SQL.format(now="%(now)s", duration="%(duration)s",
                                                     only_if_job_moved="")
    succeed_sql: str = ""  # one statement (one_statement_writes only)

    def renew_statement(self, now: Any, lease_seconds: float) -> tuple[str, dict[str, Any]]:
        """The lease renewal and its clock parameters (this process's clock)."""
        now = now or timezone.now()
        adapt = database.current().ops.adapt_datetimefield_value
        return (RENEW_SQL.format(now="%(now)s", lease="%(lease)s"),
                {"now": adapt(now), "lease": adapt(now + timedelta(seconds=lease_seconds))})

    # --- The reservation (jobs.core.reservations) -------------------------------------

    @property
    def skip_locked(self) -> str:
        features = database.current().features
        return " FOR UPDATE SKIP LOCKED" if features.has_select_for_update_skip_locked else ""

    reservation_async = ""  # the reservation's commit need not wait for the WAL flush
    chosen_sql = "IN (SELECT id FROM chosen)"
    by_priority_sql = ""

    def reservation_sql(self, queues: list[str], limit: int, seconds: float, oldest: int,
                        aging: int, autocommit: bool) -> tuple[str, list]:
        """The reservation statement and its parameters (jobs.core.reservations)."""
        now_sql, now_params, until_sql, until_params = self._reservation_clock(seconds)
        quote = database.current().ops.quote_name
        table = quote(Job._meta.db_table)
        in_queues = ", ".join(["%s"] * len(queues))
        # Status literals are inlined (they are constants) so PostgreSQL can match
        # the partial indexes job_due_idx and job_due_age_idx.
        pauses = quote(QueuePause._meta.db_table)
        due = (
            f"status IN ('{JobStatus.QUEUED.value}', '{JobStatus.RETRYING.value}')"
            f" AND queue IN ({in_queues}) AND run_after <= {now_sql}"
            f" AND (reserved_until IS NULL OR reserved_until < {now_sql})"
            f" AND queue NOT IN (SELECT queue FROM {pauses})"
        )
        asynchronous = self.reservation_async if autocommit else ""
        # Each candidate set is read (and locked) straight off its partial index, and
        # only the chosen rows are looked up again, by primary key. An earlier form
        # looked the candidates up again with `id IN (...) AND <due>`, and PostgreSQL,
        # with statistics taken while the table was empty (a queue table often is),
        # read every job of the queue for it: 6 ms per reservation instead of 0.2
        # with a backlog of 6,000. Locking both sets (up to twice `limit` rows) keeps
        # other clusters off the unchosen ones only until this statement commits.
        # The share is ranked first by a CASE, not a window function: PostgreSQL allows
        # none beside FOR UPDATE, and `oldest` is the statement's only sorted read of age.
        sql = (
            f"WITH best AS (SELECT id, priority, run_after FROM {table}{self.by_priority_sql}"
            f" WHERE {due}  ORDER BY priority DESC, run_after LIMIT %s{self.skip_locked}),"
            f" oldest AS (SELECT id, priority, run_after FROM {table} WHERE {due}"
            f"  ORDER BY run_after LIMIT %s{self.skip_locked}),"
            " share AS (SELECT id FROM oldest ORDER BY run_after, id LIMIT %s),"
            " chosen AS (SELECT id FROM (SELECT * FROM best UNION SELECT * FROM oldest) AS c"
            "  ORDER BY CASE WHEN id IN (SELECT id FROM share) THEN 0 ELSE 1 END,"
            f"  priority * %s - {self.epoch_sql('run_after')} DESC, run_after LIMIT %s)"
            f" UPDATE {table} SET reserved_until = {until_sql}{asynchronous}"
            f" WHERE id {self.chosen_sql}"
            " RETURNING id, priority, run_after, task_name"
        )
        due_params = [*queues, *now_params, *now_params]
        params = [*due_params, limit, *due_params, limit, oldest, aging, limit, *until_params]
        return sql, params

    # --- Writers and transactions ------------------------------------------------------

    @contextmanager
    def one_writer(self) -> Iterator[None]:
        """Around an enqueue's writes: nothing to take on a database of many writers."""
        yield

    @contextmanager
    def bounded_lock_wait(self, seconds: float) -> Iterator[None]:
        """Around a once() key's INSERT: bound its wait on another transaction's key."""
        yield

    def transaction_idle(self, raw: Any, sent: bool) -> bool:
        """Whether a task transaction has nothing to commit (nothing sent yet)."""
        return False

    # --- Connections ----------------------------------------------------------------

    def checkpoint(self, cursor: Any) -> tuple[int, int]:
        """Copy the write-ahead log back into the database (checkpoints only)."""
        return 0, 0

    # --- For the operator's pages (jobs.ops, jobs.admin) --------------------------------

    def row_estimate(self, table: str, connection: Any = None) -> int | None:
        """The planner's estimate of `table`'s rows (on `connection`, by default the
        engine's), without counting; None where the database keeps none (count
        instead), -1 for a table never analysed."""
        return None

    def args_match(self, value: dict[str, Any]) -> Q:
        """Jobs whose keyword arguments hold `value`'s keys with its values."""
        return Q(**{f"kwargs__{key}": v for key, v in value.items()})

    def attempts_json_sql(self, fields: tuple[str, ...]) -> str | None:
        """SQL for a JSON array of a job's attempts (`fields`, by number), correlated to
        the job's row (jobs.backends reads a result in one query); None where the
        database has no JSON aggregate this knows."""
        quote = database.current().ops.quote_name

        def column(model: type[Model], name: str) -> str:
            return quote(model._meta.get_field(name).column)

        job, attempt = quote(Job._meta.db_table), quote(Attempt._meta.db_table)
        pairs = ", ".join(f"'{name}', a.{column(Attempt, name)}" for name in fields)
        of_job = f"{column(Attempt, 'job')} = {job}.{column(Job, 'id')}"
        return self.json_array_sql(pairs, attempt, of_job, column(Attempt, "number"))

    def json_array_sql(self, pairs: str, table: str, where: str, order: str) -> str | None:
        """A scalar subquery: the rows of `table` matching `where` (an alias-less
        condition), as a JSON array of objects built from `pairs` (json_object's
        arguments, on alias `a`), ordered by `order`; None without a JSON aggregate."""
        return None
