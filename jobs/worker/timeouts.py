"""Timeouts and interrupts: the only code that arms timers or raises into a running task.

Main thread only: a POSIX interval timer (SIGALRM) raises into the task's
frame, which is the one way to stop Python code that does not cooperate.
The exceptions are BaseExceptions so a task's `except Exception` cannot
swallow them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any


class JobTimeout(BaseException):
    """The attempt overran its timeout. A BaseException so `except Exception` in
    task code cannot swallow it."""


class StepTimeout(JobTimeout):
    """One step overran its own timeout."""


class WorkerInterrupted(BaseException):
    """The worker is shutting down and the grace period is over."""


@contextmanager
def deadline(seconds: float, error: Callable[[], BaseException]) -> Iterator[None]:
    """Raise `error()` in the running code after `seconds`.

    Main thread only (POSIX interval timer). Nests: an inner deadline (a step's)
    re-arms the outer one (the job's) with what is left of it on exit, and is
    not armed at all when the outer one would fire first.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield
        return
    started = time.monotonic()

    def on_alarm(signum: int, frame: Any) -> None:
        raise error()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def step_deadline(seconds: int | None, name: str) -> AbstractContextManager[None]:
    """A step's own timeout inside the job's (see jobs.worker.steps)."""
    if not seconds:
        return nullcontext()
    return deadline(
        seconds, lambda: StepTimeout(f"step {name!r} exceeded its timeout of {seconds} s")
    )
