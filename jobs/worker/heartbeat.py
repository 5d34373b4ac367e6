"""The heartbeat: proof, written every lease/3, that a worker still runs its job.

It also writes the running step's progress: on its own connection, in
autocommit, so operators see it while the step's own transaction is still
open (a write inside that transaction would show only at its commit).

One thread per worker process, started when the worker spawns, beside the
task rather than inside it, so a task need not cooperate to stay alive. It
opens its own database connection at start and keeps it: when the server's
connection slots are exhausted later, the worker that runs a job can still
prove it is alive, instead of being reaped while it works. On the way it
notices an operator's cancel request, and the loss of the job: to the reaper
(the renewal matched nothing), or to silence (no renewal got through for a
whole lease, so another worker may run the job now). Both reach the task
through its context and end it at its next safe point.

Every statement it sends has a deadline, a third of the lease
(`sessions.Watchdog`): a renewal sent into a network that went silent is cut
and tried again on a new connection (whose opening libpq bounds by
`connect_timeout`), instead of waiting for the network to come back while the
lease lapses unnoticed.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from django.db import Error as DatabaseError

from jobs import conf, database
from jobs.core import transitions
from jobs.core.transitions import Claimed
from jobs.database import connection
from jobs.worker import sessions

logger = logging.getLogger("jobs.heartbeat")

RETRY_SECONDS = 0.2  # after a failed renewal: soon, well inside the lease
CONNECT_BACKOFF_MAX = 2.0


@dataclass
class Beat:
    """The job one worker runs now, and what its heartbeat reports back to the task."""

    claimed: Claimed
    lease_seconds: float
    cancel: threading.Event
    lost: threading.Event
    next_at: float = field(default_factory=time.monotonic)
    renewed_at: float = field(default_factory=time.monotonic)
    failing: bool = False  # a renewal failed since the last that got through
    # (step id, current, total, message) reported by the task, not yet written.
    progress: tuple[int, int, int | None, str] | None = None

    @property
    def interval(self) -> float:
        """Between renewals, and the longest one statement of the heartbeat may take."""
        return max(self.lease_seconds / 3, 0.05)


class Heartbeat(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="jobs-heartbeat", daemon=True)
        self._lock = threading.Lock()
        self._beat: Beat | None = None
        self._wake = threading.Event()
        self._sleeping_until = 0.0  # when the thread wakes by itself
        self._stopping = False
        self.connected = threading.Event()
        self.watchdog = sessions.Watchdog()

    def watch(self, beat: Beat) -> None:
        with self._lock:
            self._beat = beat
            # Waking the thread costs a switch per job; needed only if it would
            # otherwise sleep past the first renewal.
            wake = beat.next_at < self._sleeping_until
        if wake:
            self._wake.set()

    def report(self, beat: Beat, progress: tuple[int, int, int | None, str]) -> None:
        with self._lock:
            if self._beat is not beat:
                return
            beat.progress = progress
        self._wake.set()

    def unwatch(self, beat: Beat) -> None:
        with self._lock:
            if self._beat is beat:
                self._beat = None

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self.join(timeout=5)

    def run(self) -> None:
        # This thread's own connection (Django's are per thread), taken now: closing it
        # on the way out must not read the settings again, which may have changed.
        own = database.current()
        try:
            self.watchdog.start()
            sessions.name_heartbeat_connection()
            self._connect()
            while not self._stopping:
                with self._lock:
                    beat = self._beat
                    pending = beat.progress if beat is not None else None
                    if pending is not None:
                        beat.progress = None
                    now = time.monotonic()
                    # Idle, it still looks in every sixth of a lease, so a job watched
                    # meanwhile (without waking it) is renewed by half its lease.
                    delay = (max(conf.get().lease_seconds / 6, 0.05) if beat is None
                             else beat.next_at - now)
                    self._sleeping_until = now + delay
                if pending is not None:
                    self._write_progress(beat, pending)
                    continue
                if delay > 0:
                    self._wake.wait(delay)
                    self._wake.clear()
                    continue
                self._renew(beat)
        finally:
            self.watchdog.stop()
            own.close()

    def _connect(self) -> None:
        """Open the connection now, while slots are free; retry with backoff until it opens."""
        backoff = 0.1
        while not self._stopping:
            try:
                connection.ensure_connection()
            except DatabaseError as exc:
                logger.warning("heartbeat cannot connect to the database (%s); retrying in "
                               "%.1f s", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, CONNECT_BACKOFF_MAX)
                continue
            self.connected.set()
            return

    def _write_progress(self, beat: Beat, pending: tuple[int, int, int | None, str]) -> None:
        """Best effort: a lost progress report is superseded by the next one, and the
        step's last one is written in its own transaction too (jobs.worker.steps)."""
        step_id, current, total, message = pending
        try:
            with self._bounded(beat):
                transitions.step_progress(beat.claimed.attempt.number, step_id, current,
                                          total, message)
        except DatabaseError as exc:
            connection.close()
            logger.debug("could not write progress of job %s (%s)", beat.claimed.job.pk, exc)

    def _bounded(self, beat: Beat) -> AbstractContextManager[sessions.Deadline]:
        """Open the connection (libpq's connect_timeout bounds that), then give the
        statement that follows a third of the lease."""
        connection.ensure_connection()
        return self.watchdog.deadline(beat.interval, sessions.socket_of(connection))

    def _renew(self, beat: Beat) -> None:
        now = time.monotonic()
        deadline = None
        try:
            with self._bounded(beat) as deadline:
                owned, cancel = transitions.renew_lease(beat.claimed,
                                                        lease_seconds=beat.lease_seconds)
        except DatabaseError as exc:
            connection.close()  # reopened by the next try
            why = (f"no answer within {beat.interval:.1f} s, connection cut"
                   if deadline is not None and deadline.cut else str(exc).strip())
            beat.next_at = time.monotonic() + min(RETRY_SECONDS, beat.interval)
            silent = time.monotonic() - beat.renewed_at
            if silent > beat.lease_seconds:
                self._lapsed(beat, silent, why)
            elif not beat.failing:
                beat.failing = True
                logger.warning("heartbeat for job %s failed (%s); retrying", beat.claimed.job.pk,
                               why)
            return
        beat.renewed_at, beat.next_at, beat.failing = now, now + beat.interval, False
        if not owned:
            logger.warning("job %s was taken from attempt %s; stopping it at its next safe point",
                           beat.claimed.job.pk, beat.claimed.attempt.number)
            beat.lost.set()
            self.unwatch(beat)
        elif cancel:
            beat.cancel.set()

    def _lapsed(self, beat: Beat, silent: float, why: str) -> None:
        """No renewal got through for longer than the lease: the reaper of any cluster may
        have given the job to another worker, and this attempt cannot know. It stops at
        its next safe point, and whatever it still writes is refused if the job was taken."""
        logger.error(
            "job %s attempt %s: no lease renewal for %.1f s, longer than its %g s lease "
            "(last error: %s); another worker may run it now, so it stops at its next safe "
            "point, and its outcome counts only if the job was not taken meanwhile",
            beat.claimed.job.pk, beat.claimed.attempt.number, silent, beat.lease_seconds, why)
        beat.lost.set()
        self.unwatch(beat)


_thread: Heartbeat | None = None
_thread_lock = threading.Lock()


def ensure_started() -> Heartbeat:
    """The process's heartbeat thread, started (and connected) on first use."""
    global _thread
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            _thread = Heartbeat()
            _thread.start()
        return _thread


def watch(claimed: Claimed, lease_seconds: float, cancel: threading.Event,
          lost: threading.Event) -> Beat:
    """Start renewing `claimed`'s lease; its first renewal is due in a third of the lease."""
    beat = Beat(claimed, lease_seconds, cancel, lost)
    beat.next_at += beat.interval
    ensure_started().watch(beat)
    return beat


def unwatch(beat: Beat) -> None:
    if _thread is not None:
        _thread.unwatch(beat)


def report_progress(beat: Beat | None, step_id: int, current: int, total: int | None,
                    message: str) -> bool:
    """Hand a step's progress to the heartbeat thread; False if there is none to take it."""
    if beat is None or _thread is None or not _thread.is_alive():
        return False
    _thread.report(beat, (step_id, current, total, message))
    return True


def shutdown() -> None:
    """Stop the thread and close its connection (test teardown, before the database goes)."""
    global _thread
    with _thread_lock:
        if _thread is not None:
            _thread.stop()
            _thread = None
