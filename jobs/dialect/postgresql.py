"""PostgreSQL: the database's clock inside each statement, one-statement writes,
LISTEN/NOTIFY, prepared statements, and the worker sessions' settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from typing import Any

from django.db.models import Q

from jobs import database
from jobs.dialect.base import (
    ATTEMPT,
    CLAIM_JOB_SQL,
    RENEW_SQL,
    SUCCEED_ATTEMPT_SQL,
    SUCCEED_JOB_SQL,
    Dialect,
    columns,
)
from jobs.models import AttemptStatus, Job

# A statement's own time on PostgreSQL, or the caller's (tests) when it passed one.
STATEMENT_NOW = "COALESCE(%(now)s::timestamptz, statement_timestamp())"

# Both in one statement: the attempt is opened for the row the UPDATE returns, so no
# attempt without its claim, and one round trip. The attempt starts when the job did:
# at the started_at the UPDATE wrote.
CLAIM_SQL = f"""
WITH {{asynchronous}}claimed AS ({CLAIM_JOB_SQL.format(
    now=STATEMENT_NOW, lease=f"{STATEMENT_NOW} + %(lease)s::interval", columns="{columns}")}),
attempt AS (
    INSERT INTO {ATTEMPT} (job_id, number, status, started_at, worker_host, worker_pid,
                              worker_id, worker_cluster, error_class, error_message, traceback)
    SELECT id, last_attempt_number, '{AttemptStatus.RUNNING.value}', started_at, %(host)s,
           %(pid)s, %(worker_id)s, %(worker_cluster)s, '', '', ''
    FROM claimed
    RETURNING id AS attempt_id
)
SELECT claimed.*, attempt.attempt_id FROM claimed, attempt{{asynchronous_from}}
"""
# Referenced in FROM, so it is evaluated; it holds for this statement's transaction.
ASYNCHRONOUS_COMMIT = "asynchronous AS (SELECT set_config('synchronous_commit', 'off', true)), "

# One statement; the attempt is closed only if the job moved.
SUCCEED_SQL = f"""
WITH job AS ({SUCCEED_JOB_SQL.format(now=STATEMENT_NOW)}), attempt AS ({
    SUCCEED_ATTEMPT_SQL.format(now=STATEMENT_NOW,
                               duration=f"{STATEMENT_NOW} - started_at",
                               only_if_job_moved=" AND EXISTS (SELECT 1 FROM job)")})
SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM attempt), {STATEMENT_NOW}
"""
RENEW_BY_STATEMENT_TIME = RENEW_SQL.format(now=STATEMENT_NOW,
                                           lease=f"{STATEMENT_NOW} + %(lease)s::interval")

# One statement per new connection of a worker, never per job. Set only when the client
# reaches PostgreSQL itself (the pid it was told is the backend's: statements.pooled),
# never onto a pooler's server connection that other clients share, and only where
# nobody else chose a value (the server's file, the role, the database, the client).
SERVER_LIMITS_SQL = """
SELECT set_config(name, %(values)s::jsonb ->> name, false) FROM pg_settings
WHERE name = ANY(%(names)s) AND source = 'default' AND pg_backend_pid() = %(pid)s
"""
# A lapsed worker's sessions by name: (hidden from this role, ended).
LAPSED_TRANSACTIONS_SQL = (
    "SELECT state IS NULL, CASE WHEN xact_start < %(end)s"
    " THEN pg_terminate_backend(pid) END FROM pg_stat_activity"
    " WHERE datname = current_database() AND right(application_name, %(n)s) ="
    " %(name)s AND (xact_start < %(end)s OR state IS NULL)"
)


class PostgreSQL(Dialect):
    vendor = "postgresql"
    clock_in_statement = True
    one_statement_writes = True
    listens = True
    server_binds = True
    manages_sessions = True
    supports_percentiles = True
    nested_args_filter = True
    streams_snapshots = True
    # No job named: listening clusters reserve the queue's best due jobs.
    notify_runnable_sql = ("SELECT pg_notify(%s, json_build_object("
                           "'q', %s::text, 'at', extract(epoch FROM now()))::text)")
    read_now_sql = "SELECT statement_timestamp()"
    server_limits_sql = SERVER_LIMITS_SQL
    lapsed_transactions_sql = LAPSED_TRANSACTIONS_SQL

    def epoch_sql(self, column: str) -> str:
        return f"EXTRACT(EPOCH FROM {column})"

    def _reservation_clock(self, seconds: float) -> tuple[str, list, str, list]:
        return ("statement_timestamp()", [], "statement_timestamp() + %s::interval",
                [timedelta(seconds=seconds)])

    def claim_sql(self, autocommit: bool) -> str:
        return _claim_sql(autocommit)

    succeed_sql = SUCCEED_SQL

    def renew_statement(self, now: Any, lease_seconds: float) -> tuple[str, dict[str, Any]]:
        return RENEW_BY_STATEMENT_TIME, {"now": now, "lease": timedelta(seconds=lease_seconds)}

    skip_locked = " FOR UPDATE SKIP LOCKED"
    # A reservation is soft (it only keeps other clusters away for a while), so its
    # commit need not wait for the WAL flush: lost in a server crash, it changes nothing.
    reservation_async = (
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous")
    chosen_sql = "= ANY(ARRAY(SELECT id FROM chosen))"

    @contextmanager
    def bounded_lock_wait(self, seconds: float) -> Iterator[None]:
        """lock_timeout for the one statement in the block, then the transaction's own
        setting again, so the task's other statements wait as they would have."""
        connection = database.connection
        limit = f"{max(1, round(seconds * 1000))}ms"
        with connection.cursor() as cursor:
            cursor.execute("SELECT prev, set_config('lock_timeout', %s, true) FROM "
                           "(SELECT current_setting('lock_timeout') AS prev) AS p", [limit])
            previous = cursor.fetchone()[0]
        try:
            yield
        finally:
            if not connection.needs_rollback:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])

    def transaction_idle(self, raw: Any, sent: bool) -> bool:
        return raw is not None and raw.info.transaction_status.name == "IDLE"

    def row_estimate(self, table: str, connection: Any = None) -> int | None:
        """pg_class.reltuples: -1 for a table never analysed, None for no such table."""
        connection = connection or database.connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                           [connection.ops.quote_name(table)])
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def args_match(self, value: dict[str, Any]) -> Q:
        return Q(kwargs__contains=value)

    def json_array_sql(self, pairs: str, table: str, where: str, order: str) -> str | None:
        return (f"SELECT COALESCE(json_agg(json_build_object({pairs}) ORDER BY a.{order}), "
                f"'[]'::json) FROM {table} a WHERE a.{where}")

    @staticmethod
    def server_limits_params(values: dict[str, str], pid: int) -> dict[str, Any]:
        return {"values": json.dumps(values), "names": list(values), "pid": pid}


@cache
def _claim_sql(autocommit: bool) -> str:
    # Inside a caller's transaction the setting would cover the caller's writes too.
    return CLAIM_SQL.format(
        columns=columns(Job),
        asynchronous=ASYNCHRONOUS_COMMIT if autocommit else "",
        asynchronous_from=", asynchronous" if autocommit else "",
    )
