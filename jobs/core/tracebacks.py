"""A failure's traceback as it is stored: starting at the task's own code.

Every task runs below the worker's frames (jobs/worker/runner.py calling the
task, jobs/worker/steps.py calling a step's function, jobs/backends.py's
wrapper for django.tasks). Those frames are the same in every failure, so an
operator reading a traceback first scrolls past the engine to find the one
line of their code that raised. The stored traceback leaves the engine's
*leading* frames out and starts where the task's code does; engine frames
further down (ctx.step() between a task and its step) stay, since they say how
the task got there. When no frame is the task's (the engine itself failed, or a
built-in task raised) nothing is left out: a traceback is never emptied.
"""

from __future__ import annotations

import os
import traceback as tb
from functools import cache
from pathlib import Path

from jobs.core.serialization import describe

_JOBS = Path(__file__).resolve().parent.parent
# The frames that sit above every task: the runner, the step runner, the context,
# the timeouts, and the django.tasks backend's wrapper.
ENGINE_PLACES: tuple[str, ...] = (
    str(_JOBS / "worker") + os.sep,
    str(_JOBS / "core") + os.sep,
    str(_JOBS / "backends.py"),
)


@cache
def is_engine_file(filename: str) -> bool:
    """Whether code in `filename` is the engine's (cached: a worker sees a few files)."""
    try:
        real = os.path.realpath(filename)
    except (OSError, ValueError):
        return False
    return real.startswith(ENGINE_PLACES)


def task_traceback(exc: BaseException) -> str:
    """`exc`'s traceback, chained exceptions included, each starting at the task's frames.

    If formatting fails (it calls the exception's own code), the frames of `exc`
    alone, trimmed the same way, and a placeholder for its text.
    """
    try:
        report = tb.TracebackException.from_exception(exc)
        _trim(report, set())
        return "".join(report.format())
    except Exception:  # noqa: BLE001 - hostile exceptions must still be recorded
        frames = "".join(_from_task(tb.extract_tb(exc.__traceback__)).format())
        return f"Traceback (most recent call last):\n{frames}{describe(exc)}"


def _from_task(stack: tb.StackSummary) -> tb.StackSummary:
    frames = list(stack)
    first_task_frame = next(
        (i for i, frame in enumerate(frames) if not is_engine_file(frame.filename)), None)
    if not first_task_frame:  # None: no task frame, keep all; 0: nothing to leave out
        return stack
    return tb.StackSummary.from_list(frames[first_task_frame:])


def _trim(report: tb.TracebackException, seen: set[int]) -> None:
    if id(report) in seen:
        return
    seen.add(id(report))
    report.stack = _from_task(report.stack)
    grouped = getattr(report, "exceptions", None) or ()  # an ExceptionGroup's members
    for linked in (report.__cause__, report.__context__, *grouped):
        if linked is not None:
            _trim(linked, seen)
