"""A step's transitions: start, checkpoint, fail, and its progress reports.

A step's writes are fenced twice: by the job (still `running`, still owned by
this attempt) when the step starts, and by the step row's own attempt_number
(set by that start) for every write after it. A reaped attempt's start
matches no job row; its later writes match no step row, because the reaper
closed the step, or the next attempt restarted it under its own number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Exists, F, OuterRef

from jobs.core.clock import database_now
from jobs.core.serialization import storable_text
from jobs.core.transitions.errors import ErrorInfo
from jobs.exceptions import InvalidProgress, LostOwnership
from jobs.models import Job, JobStatus, Step, StepStatus

S = JobStatus



def _job_owned_by(job_id: UUID | str, attempt_number: int) -> Exists:
    return Exists(Job.objects.filter(
        pk=job_id, status=S.RUNNING, last_attempt_number=attempt_number,
    ).filter(pk=OuterRef("job_id")))


def _step_of(step_id: int, attempt_number: int) -> Any:
    return Step.objects.filter(pk=step_id, status=StepStatus.RUNNING,
                               attempt_number=attempt_number)


def start_step(
    job_id: UUID | str, attempt_number: int, step_id: int, *, now: datetime | None = None
) -> None:
    """pending | failed | running (left by a lost attempt) -> running, for this attempt.

    A succeeded step is never started again; its stored result is used instead.
    """
    moved = Step.objects.filter(
        _job_owned_by(job_id, attempt_number), pk=step_id,
    ).exclude(status=StepStatus.SUCCEEDED).update(
        status=StepStatus.RUNNING, attempt_number=attempt_number, attempts=F("attempts") + 1,
        started_at=database_now(now), finished_at=None,
        error_class="", error_message="", traceback="",
        progress_current=None, progress_total=None, progress_message="",
    )
    if not moved:
        raise LostOwnership(f"job {job_id} is no longer owned by attempt {attempt_number}")


def checkpoint_step(
    job_id: UUID | str, attempt_number: int, step_id: int, result: Any,
    *, now: datetime | None = None,
) -> None:
    """running -> succeeded with its result. Call inside the step's transaction:
    the job row stays locked until the step's own writes commit with it, so the
    reaper cannot take the job in between."""
    owned = Job.objects.select_for_update().filter(
        pk=job_id, status=S.RUNNING, last_attempt_number=attempt_number,
    ).exists()
    if not owned or not _step_of(step_id, attempt_number).update(
        status=StepStatus.SUCCEEDED, result=result, finished_at=database_now(now),
    ):
        raise LostOwnership(f"job {job_id} is no longer owned by attempt {attempt_number}")


def fail_step(
    attempt_number: int, step_id: int, error: ErrorInfo, *, now: datetime | None = None
) -> bool:
    """running -> failed, with the error; False if this attempt no longer runs the step."""
    return bool(_step_of(step_id, attempt_number).update(
        status=StepStatus.FAILED, finished_at=database_now(now),
        error_class=error.error_class, error_message=error.message, traceback=error.traceback,
    ))


MAX_PROGRESS = 2 ** 63 - 1  # Step.progress_current/_total: a bigint, never negative
MAX_PROGRESS_MESSAGE = 255  # Step.progress_message's length


def _shown(value: Any) -> str:
    """A figure as an error message can show it (a huge int has no str: 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        return repr(value)[:80]
    except Exception:  # noqa: BLE001 - any object's own __repr__
        return f"a {type(value).__name__}"


def _progress_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProgress(
            f"progress {name} must be an int, not a {type(value).__name__}: got {_shown(value)}"
        )
    if not 0 <= value <= MAX_PROGRESS:
        raise InvalidProgress(
            f"progress {name} must be between 0 and {MAX_PROGRESS:,} (2**63 - 1), "
            f"got {_shown(value)}"
        )
    return int(value)


def progress_values(current: Any, total: Any, message: Any) -> tuple[int, int | None, str]:
    """A progress report as it will be stored, checked before any SQL.

    The figures are refused when wrong, with InvalidProgress naming the argument
    and the rule (they are the caller's bug, and a figure the column cannot hold
    must not become a database error in the step's transaction): `current` and
    `total` are ints, not bools, from 0 to 2**63 - 1, `total` may be None, and
    `current` is at most `total`.

    The message is text for people, so it is made storable rather than refused,
    and a report can never fail a job because of what its message says: NULs
    dropped, lone surrogates replaced by U+FFFD, cut to 255 characters with a
    marker (`storable_text`). Only a message that is not a str is refused.
    """
    current = _progress_count(current, "current")
    if total is not None:
        total = _progress_count(total, "total")
        if current > total:
            raise InvalidProgress(
                f"progress current ({_shown(current)}) must not exceed total ({_shown(total)})"
            )
    if not isinstance(message, str):
        raise InvalidProgress(f"progress message must be a str, got {type(message).__name__}")
    return current, total, storable_text(message, MAX_PROGRESS_MESSAGE)


def step_progress(
    attempt_number: int, step_id: int, current: int, total: int | None, message: str
) -> bool:
    """Record a running step's progress (not a status change, but fenced the same way;
    a late report for a step that has finished changes nothing). The figures are
    checked and the message made storable first (`progress_values`)."""
    current, total, message = progress_values(current, total, message)
    return bool(_step_of(step_id, attempt_number).filter(status=StepStatus.RUNNING).update(
        progress_current=current, progress_total=total, progress_message=message,
    ))

