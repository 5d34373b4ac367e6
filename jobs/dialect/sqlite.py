"""SQLite: a database in this process (its clock is this host's), one writer at a time,
and its WAL checkpoints moved off the request path.

In WAL mode SQLite copies the log back into the database file ("checkpoint")
from inside whichever commit pushes the log past `wal_autocheckpoint` pages
(1,000 by default), and that commit waits for the copy and its fsync. A job
row with its indexes writes about 13 pages, so one enqueue in 75 paid a
checkpoint: 4 ms instead of 0.2, the whole p99 (bench/peers, SQLite).

So each connection checkpoints by itself only past
JOBS['SQLITE_AUTOCHECKPOINT_PAGES'] (the bound on the log when no cluster
runs), and every cluster's maintenance thread checkpoints in the background
(PASSIVE: it never waits for a writer or a reader, nor makes them wait).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobs import conf, database
from jobs.dialect.base import Dialect
from jobs.models.job import DUE_INDEX

_writer = threading.Lock()


class SQLite(Dialect):
    vendor = "sqlite"
    defers_begin = True
    checkpoints = True
    skip_locked = ""
    # SQLite has no statistics to tell the two partial indexes apart: for `best` it
    # took job_due_age_idx and sorted every due job by priority, inside the write
    # transaction every worker waits on (1 ms with a backlog of 5,000). Named here,
    # it reads the first `limit` entries of job_due_idx, as PostgreSQL does.
    by_priority_sql = f" INDEXED BY {DUE_INDEX}"

    @property
    def bulk_size(self) -> int:
        """Every reservation is a write transaction, and the workers' claims and
        successes wait for SQLite's one write lock behind it: 16 a time drained about
        a third more than 4 (jobs.worker.reservation.reservation_size)."""
        return conf.SQLITE_BULK

    @contextmanager
    def one_writer(self) -> Iterator[None]:
        """In autocommit, this process's enqueues take turns on a lock.

        SQLite has one writer at a time, and a writer that finds it taken sleeps in
        SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ms...) however soon the lock
        is free again: 20 requests of one threaded server enqueueing at once waited
        up to 140 ms on each other, for writes of a millisecond each. Queued on a
        lock, each goes as soon as the one before is done. Inside a caller's
        transaction nothing changes (its BEGIN IMMEDIATE holds the database's lock
        already).
        """
        if not database.get_autocommit():
            yield
            return
        with _writer:
            yield

    def transaction_idle(self, raw: Any, sent: bool) -> bool:
        return not sent

    def checkpoint(self, cursor: Any) -> tuple[int, int]:
        return checkpoint(cursor)

    def json_array_sql(self, pairs: str, table: str, where: str, order: str) -> str | None:
        # json_group_array keeps the subquery's order
        return (f"SELECT json_group_array(json_object({pairs})) "
                f"FROM (SELECT * FROM {table} WHERE {where} ORDER BY {order}) a")


def tune(cursor: Any) -> None:
    """Set this connection's own checkpoint threshold (a DB-API cursor on SQLite)."""
    pages = conf.get().sqlite_autocheckpoint_pages
    if pages:
        cursor.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Django's connection_created, for every new SQLite connection of any process."""
    if connection.vendor == "sqlite":
        # On the raw connection: a PRAGMA is no statement of whatever the caller
        # wraps (jobs.worker.connections.task_transaction counts those).
        cursor = connection.connection.cursor()
        try:
            tune(cursor)
        finally:
            cursor.close()


def checkpoint(cursor: Any) -> tuple[int, int]:
    """Copy what the log holds back into the database without blocking anyone.

    Returns (frames in the log, frames copied); the log restarts from its
    beginning once every frame was copied and no reader still needs it.
    """
    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
    row = cursor.fetchone()
    if row is None:  # not in WAL mode: nothing to do
        return 0, 0
    _busy, frames, copied = row
    return max(frames, 0), max(copied, 0)
