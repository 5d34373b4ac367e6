"""What a running task may know about its own job, without taking a parameter for it."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class JobContext:
    job_id: UUID
    task_name: str
    attempt_number: int  # across every cycle; numbers the Attempt row
    attempt_count: int  # tries in the current cycle, this one included
    max_attempts: int


_current: ContextVar[JobContext | None] = ContextVar("current_job", default=None)


def current_job() -> JobContext | None:
    """The job the calling code runs in, or None outside a worker."""
    return _current.get()
