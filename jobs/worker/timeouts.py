"""Timeouts and interrupts: the only code that arms timers or raises into a running task.

Main thread only: a POSIX interval timer (SIGALRM) raises into the task's
frame, which is the one way to stop Python code that does not cooperate.
The exceptions (in jobs.exceptions, with every error the engine records) are
BaseExceptions so a task's `except Exception` cannot swallow them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from jobs.exceptions import JobTimeout, StepTimeout, WorkerInterrupted

__all__ = ["Deadline", "JobTimeout", "StepTimeout", "WorkerInterrupted", "deadline", "fired",
           "step_deadline"]


@dataclass
class Deadline:
    """One deadline of the main thread, and the error it raised once it fired."""

    fired: BaseException | None = None


# The main thread's open deadlines, outermost first (a job's, then its running step's).
_active: list[Deadline] = []


def fired() -> BaseException | None:
    """The error of the first open deadline that fired, or None.

    Once a deadline fired the attempt is over, whatever its code did with the
    error (a bare `except:` around a long call swallows it): nothing after it
    may count as the work's outcome (see `deadline`).
    """
    return next((d.fired for d in _active if d.fired is not None), None)


@contextmanager
def deadline(seconds: float, error: Callable[[], BaseException]) -> Iterator[None]:
    """Raise `error()` in the running code after `seconds`.

    Main thread only (POSIX interval timer). Nests: an inner deadline (a step's)
    re-arms the outer one (the job's) with what is left of it on exit, and is
    not armed at all when the outer one would fire first.

    A deadline that fired stays fired: if the code caught the error and went on
    (returned a result, raised something else), the block still ends with that
    same error, so a timeout is recorded as a timeout and the writes of a
    transaction opened around the block (an atomic task's, a step's) roll back.
    An inner deadline that fired is handed to the enclosing one, so a task that
    catches its step's timeout still times out; and any block ends with the
    error of an enclosing deadline that fired before it ended.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = Deadline()
    _active.append(state)
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    armed = not (outer_left and outer_left <= seconds)
    started = time.monotonic()

    def on_alarm(signum: int, frame: Any) -> None:
        exc = error()
        if state.fired is None:
            state.fired = exc
        raise exc

    if armed:
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            yield
        except BaseException as exc:
            first = fired()
            if first is not None and first is not exc:
                raise first from exc  # what the code did after its deadline fired
            raise
        first = fired()
        if first is not None:
            raise first  # the code caught its timeout and carried on: still a timeout
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if outer_left:
                left = outer_left - (time.monotonic() - started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
        _active.pop()
        if state.fired is not None and _active and _active[-1].fired is None:
            _active[-1].fired = state.fired


def step_deadline(seconds: int | None, name: str) -> AbstractContextManager[None]:
    """A step's own timeout inside the job's (see jobs.worker.steps)."""
    if not seconds:
        return nullcontext()
    return deadline(
        seconds, lambda: StepTimeout(f"step {name!r} exceeded its timeout of {seconds} s")
    )
