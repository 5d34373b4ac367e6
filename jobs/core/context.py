"""What a running task may know about its own job, without taking a parameter for it.

The context lives in core so that core helpers (`jobs.core.effects.once`) can
read the current job; what only a worker can do (checkpointed steps, timers)
is injected by the worker as a `StepRunner`, so core never imports upward.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from jobs.exceptions import AttemptLost, JobCancelled, StepError

# AttemptLost and JobCancelled live in jobs.exceptions; still importable from here.
__all__ = ["AttemptLost", "JobCancelled", "JobContext", "JobLogFields", "StepRunner",
           "current_job", "install_log_context", "running"]


class StepRunner(Protocol):
    """What the worker provides to run checkpointed steps (see jobs.worker.steps)."""

    def run(self, ctx: JobContext, name: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any], *, max_attempts: int | None, timeout: int | None,
            limits: dict[str, Any] | None) -> Any: ...

    def progress(self, ctx: JobContext, current: int, total: int | None, message: str) -> None: ...


@dataclass(frozen=True)
class JobContext:
    job_id: UUID
    task_name: str
    attempt_number: int  # across every cycle; numbers the Attempt row and fences writes
    attempt_count: int  # tries in the current cycle, this one included
    max_attempts: int
    # The whole task runs in one transaction (an atomic task): steps cannot checkpoint.
    in_task_transaction: bool = False
    # Set by the worker's heartbeat when an operator asks the job to stop.
    cancel_event: threading.Event = field(default_factory=threading.Event, compare=False)
    # Set by the worker's heartbeat when the lease was lost to the reaper.
    lost_event: threading.Event = field(default_factory=threading.Event, compare=False)
    steps: StepRunner | None = field(default=None, compare=False)

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()

    def step(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        max_attempts: int | None = None,
        timeout: int | None = None,
        limits: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run `fn(*args, **kwargs)` as the checkpointed step `name` (see jobs.worker.steps).

        With `limits`, `fn` also receives `limits=` (the code's defaults merged
        with any an operator set on the step before resuming).
        """
        return self._runner().run(self, name, fn, args, kwargs, max_attempts=max_attempts,
                                  timeout=timeout, limits=limits)

    def progress(self, current: int, total: int | None = None, message: str = "") -> None:
        """Report progress inside the running step; cheap to call often (writes are throttled)."""
        self._runner().progress(self, current, total, message)

    def raise_if_cancelled(self) -> None:
        """Call at safe points in long tasks: stops here if the job was cancelled or lost."""
        self.raise_if_lost()
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} was cancelled by an operator")

    def raise_if_lost(self) -> None:
        """Stop here if this attempt lost the job (reaped, or its lease lapsed unrenewed):
        what it would do next could be done again by the worker that took it over.
        once() and progress() call it; a cancel is honoured only where the task asks."""
        if self.lost_event.is_set():
            raise AttemptLost(f"job {self.job_id}: attempt {self.attempt_number} lost the job "
                              "(reaped, or its lease lapsed unrenewed)")

    def _runner(self) -> StepRunner:
        if self.steps is None:
            raise StepError("steps run only inside a worker (this context has no step runner)")
        return self.steps


_current: ContextVar[JobContext | None] = ContextVar("current_job", default=None)


def current_job() -> JobContext | None:
    """The job the calling code runs in, or None outside a worker."""
    return _current.get()


@contextmanager
def running(ctx: JobContext) -> Iterator[JobContext]:
    """Make `ctx` the current job for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def install_log_context() -> None:
    """Give every log record `job` ("job=<id> task=<name> attempt=<n>", or "" outside
    a job), `job_id`, `job_task` and `job_attempt`, so a formatter can show which
    job wrote a line (`%(job)s`) whichever library logged it. Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_job_context", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ctx = _current.get()
        if ctx is None:
            record.job, record.job_id, record.job_task, record.job_attempt = "", "", "", ""
        else:
            record.job_id, record.job_task = str(ctx.job_id), ctx.task_name
            record.job_attempt = ctx.attempt_number
            record.job = f"job={ctx.job_id} task={ctx.task_name} attempt={ctx.attempt_number}"
        return record

    factory.adds_job_context = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JobLogFields(logging.Filter):
    """For a handler whose format names %(job)s: fills the job fields of a record made
    before `install_log_context()` ran (while Django was still starting)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job"):
            record.job, record.job_id, record.job_task, record.job_attempt = "", "", "", ""
        return True
