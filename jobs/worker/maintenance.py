"""Housekeeping that runs inside every cluster: one daemon thread per cluster.

The thread lives in the cluster's pusher process (started by the broker on
its first dequeue), so every `qcluster` gets it without another process to
deploy, and the sentinel's reincarnation of a dead pusher restarts it. Each
periodic function must be safe to run from several clusters at once: each
claims its work with a guarded UPDATE or SKIP LOCKED, never by assuming it is
alone.

After the database comes back from an outage, the reaper waits one lease
before it reaps: the heartbeats of live workers were cut off by the same
outage and must get the chance to renew first, or working jobs would be taken
from workers that never stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import Error as DatabaseError
from django.db import close_old_connections

from jobs import conf, dialect
from jobs.database import connection
from jobs.scheduling.firing import fire_due
from jobs.worker.reaper import sweep

logger = logging.getLogger("jobs.maintenance")

SCHEDULER_INTERVAL_SECONDS = 0.5
CHECKPOINT_INTERVAL_SECONDS = 0.5


def periodic() -> list[tuple[str, Callable[[], object], float]]:
    """(name, function, seconds between runs): what every cluster does besides jobs."""
    jobs: list[tuple[str, Callable[[], object], float]] = [
        ("reaper", sweep, conf.get().reaper_interval_seconds),
        ("scheduler", fire_due, SCHEDULER_INTERVAL_SECONDS),
    ]
    if dialect.current().checkpoints:
        jobs.append(("checkpoint", checkpoint, CHECKPOINT_INTERVAL_SECONDS))
    return jobs


def checkpoint() -> None:
    """SQLite: copy the WAL into the database here, so that no commit of a request
    or a worker has to (jobs.dialect.sqlite)."""
    with connection.cursor() as cursor:
        dialect.current().checkpoint(cursor)


# Periodic functions that must not run while heartbeats may still be catching up.
WAIT_AFTER_OUTAGE = frozenset({"reaper"})


class DatabaseWatch:
    """What this thread has seen of the database: down since when, back since when."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.back_at: float | None = None

    def failed(self, now: float) -> None:
        if self.down_since is None:
            self.down_since, self.back_at = now, None

    def succeeded(self, now: float, settle: float) -> None:
        if self.down_since is not None:
            logger.warning("database is back after %.1f s; the reaper waits %.1f s (one lease) "
                           "so live workers can renew first", now - self.down_since, settle)
            self.down_since, self.back_at = None, now

    def settling(self, now: float, settle: float) -> bool:
        return self.down_since is not None or (
            self.back_at is not None and now - self.back_at < settle)

_thread: threading.Thread | None = None
_lock = threading.Lock()


def ensure_started(stop: threading.Event | None = None) -> threading.Thread:
    """Start the maintenance thread once per process."""
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(
                target=run_forever, args=(stop or threading.Event(),),
                name="jobs-maintenance", daemon=True,
            )
            _thread.start()
        return _thread


def run_forever(stop: threading.Event, tick: float | None = None) -> None:
    settings = conf.get()
    tick = tick or settings.maintenance_tick_seconds
    jobs = periodic()
    watch = DatabaseWatch()
    last_run: dict[str, float] = {}
    try:
        while not stop.is_set():
            for name, func, every in jobs:
                now = time.monotonic()
                if now - last_run.get(name, 0.0) < every:
                    continue
                if name in WAIT_AFTER_OUTAGE and watch.settling(now, settings.lease_seconds):
                    continue
                last_run[name] = now
                if run_once(name, func):
                    watch.succeeded(time.monotonic(), settings.lease_seconds)
                else:
                    watch.failed(time.monotonic())
            stop.wait(tick)
    finally:
        connection.close()


def run_once(name: str, func: Callable[[], object]) -> bool:
    """One periodic run; False if the database failed it. Never fatal: retried next tick."""
    try:
        close_old_connections()
        func()
    except DatabaseError:
        logger.warning("maintenance task %s: database unavailable; will retry", name,
                       exc_info=True)
        connection.close()
        return False
    except Exception:
        logger.exception("maintenance task %s failed; will retry", name)
        connection.close()
    return True
