"""What a running task may know about its own job, without taking a parameter for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from jobs.steps import StepState


class JobCancelled(BaseException):
    """An operator cancelled the running job. A BaseException so that a task's
    `except Exception` does not swallow it; the runner records the attempt as cancelled."""


@dataclass(frozen=True)
class JobContext:
    job_id: UUID
    task_name: str
    attempt_number: int  # across every cycle; numbers the Attempt row
    attempt_count: int  # tries in the current cycle, this one included
    max_attempts: int
    # The whole task runs in one transaction (an atomic task): steps cannot checkpoint.
    in_task_transaction: bool = False
    # Set by the worker's heartbeat when an operator asks the job to stop.
    cancel_event: threading.Event = field(default_factory=threading.Event, compare=False)
    steps: StepState = field(default_factory=StepState, compare=False)

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
        """Run `fn(*args, **kwargs)` as the checkpointed step `name` (see jobs.steps).

        With `limits`, `fn` also receives `limits=` (the code's defaults merged
        with any an operator set on the step before resuming).
        """
        from jobs.steps import run_step

        return run_step(self, name, fn, *args, max_attempts=max_attempts, timeout=timeout,
                        limits=limits, **kwargs)

    def progress(self, current: int, total: int | None = None, message: str = "") -> None:
        """Report progress inside the running step; cheap to call often (writes are throttled)."""
        from jobs.steps import report_progress

        report_progress(self, current, total, message)

    def raise_if_cancelled(self) -> None:
        """Call at safe points in long tasks: stops here if an operator cancelled the job."""
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} was cancelled by an operator")


_current: ContextVar[JobContext | None] = ContextVar("current_job", default=None)


def current_job() -> JobContext | None:
    """The job the calling code runs in, or None outside a worker."""
    return _current.get()
