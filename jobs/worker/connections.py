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
from collections.abc import Callable
from time import monotonic
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection, transaction

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
        if not transaction.get_autocommit():
            raise
        logger.warning("the database connection was dead; reconnecting")
        connection.close()
        result = statement()
    answered()
    return result
