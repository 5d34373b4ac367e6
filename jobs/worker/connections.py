"""The worker processes' own database connection: a health check only when it can matter.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query after
every `close_old_connections()`, which django-q2 calls before each task: one
round trip per job that almost never finds anything. A connection that
answered moments ago is trusted instead, and a statement that finds it dead
after all is retried once on a new connection (`retry_on_new_connection`).
A connection idle for longer is checked as Django would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError

from jobs import database, dialect
from jobs.database import connection

logger = logging.getLogger("jobs.worker")

# Trust a connection that answered within this many seconds.
FRESH_SECONDS = 1.0
# What a dropped connection raises (a restart, a failover, an administrator's terminate).
ConnectionErrors = (OperationalError, InterfaceError)
T = TypeVar("T")


class _Liveness:
    answered_at = float("-inf")


_liveness = _Liveness()


def answered() -> None:
    """The connection just answered a statement: it is alive."""
    _liveness.answered_at = monotonic()


def skip_health_check_if_fresh() -> bool:
    """Mark Django's health check done when the connection answered moments ago."""
    fresh = (connection.connection is not None
             and monotonic() - _liveness.answered_at < FRESH_SECONDS)
    if fresh:
        connection.health_check_done = True
    return fresh


def retry_on_new_connection(statement: Callable[[], T]) -> T:
    """Run an autocommit statement; if the trusted connection turns out dead, once more
    on a new one. A statement that did commit before its reply was lost is sent
    again, so it must be one whose repetition is refused (a guarded transition)."""
    try:
        result = statement()
    except ConnectionErrors:
        if not database.get_autocommit():
            raise
        logger.warning("the database connection was dead; reconnecting")
        connection.close()
        result = statement()
    answered()
    return result


class TaskTransaction:
    """An atomic task's transaction that begins with its first statement.

    psycopg does this by itself. SQLite's BEGIN IMMEDIATE (config/settings.py)
    takes the database's one write lock at once, so a task that works for a
    second before it writes, or never writes, kept every other writer waiting
    (a web request enqueueing a job among them) for that second. Here the
    BEGIN is held back until the task sends its first statement: the lock is
    then held from the task's first statement to its commit, which is what
    atomic means, and not longer.
    """

    def __init__(self) -> None:
        self.held_begin: str | None = None
        self.sent = False

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
                 context: dict[str, Any]) -> Any:
        if not self.sent and self.held_begin is None and sql.startswith("BEGIN"):
            self.held_begin = sql
            return None
        if not self.sent and self.held_begin is not None:
            execute(self.held_begin, None, False, context)
        self.sent = True
        return execute(sql, params, many, context)

    @property
    def idle(self) -> bool:
        """Nothing sent yet, nothing to commit (on PostgreSQL: psycopg's own state)."""
        return dialect.current().transaction_idle(connection.connection, self.sent)


@contextmanager
def task_transaction() -> Iterator[TaskTransaction]:
    """database.atomic() for an atomic task, begun with its first statement."""
    state = TaskTransaction()
    if dialect.current().defers_begin:
        with connection.execute_wrapper(state), database.atomic():
            yield state
    else:
        with database.atomic():
            yield state
