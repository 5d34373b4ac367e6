"""Waking a cluster when work arrives, instead of waiting for its next poll.

On PostgreSQL the pusher LISTENs on `jobs_runnable`, which a trigger notifies
at the commit that makes a job runnable (jobs/migrations/0002, 0009), naming
the job. Between notifications it waits until the earliest `run_after` it has
heard of, or at most JOBS['LISTEN_FALLBACK_SECONDS'], then polls anyway: a
notification that is lost (a dropped connection) costs at most that long. On
SQLite there is nothing to listen to and the pusher polls every Q_POLL.

A job heard of while the pusher waits is handed to a worker by its id, with no
reservation first: the cluster was idle, so nothing it could reserve ranks
before it, and the worker's claim is the fence whoever else heard of it.
Notifications that piled up while the pusher was busy are read in one go and
answered with one reservation, not one each: its reservations have already
seen most of those jobs.

Behind a pooler in transaction mode (PgBouncer) LISTEN hears nothing: the
server connection that ran it goes back to the pool at once, and no
notification reaches the client. The listener opens its connection with
JOBS['LISTEN_DATABASE_URL'] when set (a direct connection), else with the
database's own settings; if that connection turns out pooled
(`jobs.core.statements.pooled`) it says so once and the pusher polls every
Q_POLL instead, as on SQLite (docs/deployment.md, "PgBouncer").
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from jobs import conf, dialect
from jobs.core import statements
from jobs.core.queues import CHANNEL
from jobs.database import connection

logger = logging.getLogger("jobs.wakeup")



@dataclass(frozen=True)
class Heard:
    """One notification: a job of `queue` runnable from `due` (epoch seconds by the
    database's clock).

    `job_id` and `task_name` are empty when no job is named (a queue resumed, or
    a trigger older than migration 0009): then the queue is to be looked at.
    `sent_at` is the database's clock when the trigger ran (migration 0012; None
    before it), so how long to wait is read from the database's clock, not this
    host's: a host a minute behind would otherwise hear every delayed job as a
    minute away and find it only at its fallback poll.
    """

    queue: str
    due: float
    job_id: str = ""
    task_name: str = ""
    sent_at: float | None = None

    @classmethod
    def parse(cls, payload: str) -> Heard | None:
        try:
            note = json.loads(payload)
            sent_at = note.get("n")
            return cls(str(note["q"]), float(note["at"]), str(note.get("id", "")),
                       str(note.get("t", "")), None if sent_at is None else float(sent_at))
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
        queue, _, epoch = payload.rpartition(" ")  # before 0009: "<queue> <epoch>"
        try:
            return cls(queue, float(epoch))
        except ValueError:
            return None

    def due_here(self, heard_at: float) -> float:
        """When it is due by this host's clock, heard at `heard_at` (this host's time):
        the wait the database's clock gives, from now; without `sent_at`, `due` as is."""
        if self.sent_at is None:
            return self.due
        return heard_at + (self.due - self.sent_at)


# What Listener.wait hands back: a job to run now, by id and task name.
Due = tuple[str, str]


class Listener:
    """One LISTEN connection of the pusher, with what it has heard of delayed jobs."""

    def __init__(self, queues: Iterable[str]) -> None:
        self.queues = set(queues)
        self.next_due: float | None = None  # epoch seconds of the earliest delayed job heard of
        self._conn: psycopg.Connection | None = None
        self.pooled = False  # the connection goes through a pooler: poll instead

    @staticmethod
    def available() -> bool:
        return dialect.current().listens

    def wait(self, poll: float, limit: int = 1) -> list[Due]:
        """Return when a served queue may have a due job: notified, a delayed job came
        due, or the fallback interval passed. Never raises: falls back to sleeping.

        Returns the jobs to hand to workers by id: those heard of during this wait,
        due now, at most `limit`. Empty means: reserve (look at the queues).
        """
        if self.pooled:
            time.sleep(poll)
            return []
        try:
            if self._conn is None or self._conn.closed:
                # Just (re)connected: anything that arrived before LISTEN was not heard,
                # so go and look now.
                self._connect()
                return []
            # Heard while the pusher was busy: answered with one reservation.
            if self._due(self._read(0.0)) is not None:
                return []
            deadline = time.monotonic() + self._timeout()
            while (left := deadline - time.monotonic()) > 0:
                burst = self._read(left, stop_after=1)
                if not burst:
                    return []  # the wait ran out: poll
                due = self._due(burst + self._read(0.0))
                if due is not None:
                    return due if len(due) <= limit else []  # many: reserve the best
                # A delayed job or another queue: wait on, maybe less long.
                deadline = min(deadline, time.monotonic() + self._timeout())
            return []
        except psycopg.Error:
            logger.warning("listening for new jobs failed; polling until it reconnects",
                           exc_info=True)
            self.close()
            time.sleep(poll)
            return []

    def _read(self, timeout: float, stop_after: int | None = None) -> list[str]:
        """Notifications received within `timeout` (0: only those already here)."""
        assert self._conn is not None
        payloads: list[str] = []
        while True:
            got = [n.payload for n in self._conn.notifies(timeout=timeout, stop_after=stop_after)]
            payloads += got
            if stop_after is not None or not got or timeout:
                return payloads

    def _due(self, payloads: list[str]) -> list[Due] | None:
        """The named jobs of served queues due now; [] if a queue is due but no job is
        named; None if nothing is due now (delayed jobs are remembered)."""
        named: list[Due] = []
        anything = False
        heard_at = time.time()
        now = heard_at + 0.001
        for payload in payloads:
            heard = Heard.parse(payload)
            if heard is None:
                anything = True  # unreadable: look at the queues
                continue
            if heard.queue not in self.queues:
                continue
            due = heard.due_here(heard_at)
            if due > now:
                self.next_due = due if self.next_due is None else min(self.next_due, due)
                continue
            anything = True
            if heard.job_id:
                named.append((heard.job_id, heard.task_name))
            else:
                return []
        return named if anything else None

    def _timeout(self) -> float:
        limit = conf.get().listen_fallback_seconds
        if self.next_due is not None:
            limit = min(limit, max(self.next_due - time.time(), 0.0))
        return limit

    def woke_due(self) -> None:
        """After a reservation round: forget delayed times that have passed."""
        if self.next_due is not None and self.next_due <= time.time():
            self.next_due = None

    def _connect(self) -> psycopg.Connection | None:
        if self._conn is None or self._conn.closed:
            url = conf.get().listen_database_url
            if url:
                conn = psycopg.connect(url, autocommit=True)
            else:
                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                conn = psycopg.connect(**params, autocommit=True)
            try:
                if statements.pooled(conn):
                    conn.close()
                    self._poll_from_now_on(bool(url))
                    return None
                conn.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _poll_from_now_on(self, own_url: bool) -> None:
        self.pooled = True
        where = ("JOBS['LISTEN_DATABASE_URL'] goes through a connection pooler too" if own_url
                 else "the LISTEN connection goes through a connection pooler")
        logger.warning(
            "%s, where notifications do not arrive: this cluster polls for new jobs every "
            "Q_POLL instead of being woken (set JOBS['LISTEN_DATABASE_URL'] to a direct "
            "connection to the database; docs/deployment.md)", where)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
