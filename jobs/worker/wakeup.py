"""Waking a cluster when work arrives, instead of waiting for its next poll.

On PostgreSQL the pusher LISTENs on `jobs_runnable`, which a trigger notifies
at the commit that makes a job runnable (jobs/migrations/0002). Between
notifications it waits until the earliest `run_after` it has heard of, or at
most JOBS['LISTEN_FALLBACK_SECONDS'], then polls anyway: a notification that is lost (a
dropped connection) costs at most that long. On SQLite there is nothing to
listen to and the pusher polls every Q_POLL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import psycopg
from django.db import connection

from jobs import conf
from jobs.core.queues import CHANNEL

logger = logging.getLogger("jobs.wakeup")



class Listener:
    """One LISTEN connection of the pusher, with what it has heard of delayed jobs."""

    def __init__(self, queues: Iterable[str]) -> None:
        self.queues = set(queues)
        self.next_due: float | None = None  # epoch seconds of the earliest delayed job heard of
        self._conn: psycopg.Connection | None = None

    @staticmethod
    def available() -> bool:
        return connection.vendor == "postgresql"

    def wait(self, poll: float) -> None:
        """Return when a served queue may have a due job: notified, a delayed job came
        due, or the fallback interval passed. Never raises: falls back to sleeping."""
        try:
            if self._conn is None or self._conn.closed:
                # Just (re)connected: anything that arrived before LISTEN was not heard,
                # so go and look now.
                self._connect()
                return
            conn = self._conn
            deadline = time.monotonic() + self._timeout()
            while (left := deadline - time.monotonic()) > 0:
                for note in conn.notifies(timeout=left, stop_after=1):
                    if self._due_now(note.payload):
                        return
                    break  # a delayed job or another queue: wait on, maybe less long
                else:
                    return  # the wait ran out: poll
                deadline = min(deadline, time.monotonic() + self._timeout())
        except psycopg.Error:
            logger.warning("listening for new jobs failed; polling until it reconnects",
                           exc_info=True)
            self.close()
            time.sleep(poll)

    def _timeout(self) -> float:
        limit = conf.get().listen_fallback_seconds
        if self.next_due is not None:
            limit = min(limit, max(self.next_due - time.time(), 0.0))
        return limit

    def _due_now(self, payload: str) -> bool:
        queue, _, epoch = payload.rpartition(" ")
        if queue not in self.queues:
            return False
        try:
            due = float(epoch)
        except ValueError:
            return True
        if due <= time.time() + 0.001:
            return True
        self.next_due = due if self.next_due is None else min(self.next_due, due)
        return False

    def woke_due(self) -> None:
        """After a reservation round: forget delayed times that have passed."""
        if self.next_due is not None and self.next_due <= time.time():
            self.next_due = None

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._conn = psycopg.connect(**params, autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
