"""What a running task may know about its own job, without taking a parameter for it."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from uuid import UUID


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
    # Set by the worker's heartbeat when an operator asks the job to stop.
    cancel_event: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        """Call at safe points in long tasks: stops here if an operator cancelled the job."""
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} was cancelled by an operator")


_current: ContextVar[JobContext | None] = ContextVar("current_job", default=None)


def current_job() -> JobContext | None:
    """The job the calling code runs in, or None outside a worker."""
    return _current.get()
