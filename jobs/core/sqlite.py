"""SQLite's WAL checkpoints, moved off the request path.

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

from typing import Any

from jobs import conf


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
