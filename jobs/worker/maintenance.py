"""Housekeeping that runs inside every cluster: one daemon thread per cluster.

The thread lives in the cluster's pusher process (started by the broker on
its first dequeue), so every `qcluster` gets it without another process to
deploy, and the sentinel's reincarnation of a dead pusher restarts it. Each
periodic function must be safe to run from several clusters at once: each
claims its work with a guarded UPDATE or SKIP LOCKED, never by assuming it is
alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

from jobs import conf
from jobs.scheduling.firing import fire_due
from jobs.worker.reaper import sweep

logger = logging.getLogger("jobs.maintenance")

SCHEDULER_INTERVAL_SECONDS = 0.5


def periodic() -> list[tuple[str, Callable[[], object], float]]:
    """(name, function, seconds between runs): what every cluster does besides jobs."""
    return [
        ("reaper", sweep, conf.get().reaper_interval_seconds),
        ("scheduler", fire_due, SCHEDULER_INTERVAL_SECONDS),
    ]

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
    tick = tick or conf.get().maintenance_tick_seconds
    jobs = periodic()
    last_run: dict[str, float] = {}
    try:
        while not stop.is_set():
            now = time.monotonic()
            for path, func, every in jobs:
                if now - last_run.get(path, 0.0) >= every:
                    last_run[path] = now
                    run_once(path, func)
            stop.wait(tick)
    finally:
        connection.close()


def run_once(path: str, func: Callable[[], object]) -> None:
    """One periodic run; a failure is logged and retried next tick, never fatal."""
    try:
        close_old_connections()
        func()
    except Exception:
        logger.exception("maintenance task %s failed; will retry", path)
        connection.close()
