"""Durable steps: a job made of checkpoints that resumes where it failed.

    @task(name="catalog.import", steps=["download", "validate", "load"])
    def import_catalog(url: str) -> dict:
        ctx = current_job()
        path = ctx.step("download", download, url)          # runs once, result stored
        rows = ctx.step("validate", validate, path)
        return ctx.step("load", load, rows, limits={"batch_size": 500})

Each step runs in its own transaction with its checkpoint, so a step's writes
and its stored result commit together; a retry or an operator's resume
returns a succeeded step's stored result without running it again. The job as
a whole is therefore not one transaction: tasks with steps are registered
non-atomic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from jobs.exceptions import JobsError, PermanentError
from jobs.models import Job, JobStatus, Step, StepStatus
from jobs.serialization import stored_json

if TYPE_CHECKING:
    from jobs.context import JobContext

logger = logging.getLogger("jobs.steps")

PROGRESS_MIN_INTERVAL = 1.0  # seconds between progress writes for one step


class StepError(JobsError):
    """A step was declared or called in a way that cannot be checkpointed."""


class DuplicateStepError(StepError, PermanentError):
    """A step name was used twice in one job: a bug no retry can fix."""


class StepLostOwnership(JobsError):
    """The job was taken from this attempt (reaped, cancelled) while a step ran."""


@dataclass
class StepState:
    """Per-attempt bookkeeping the runner reads when the attempt ends."""

    names_seen: set[str] = field(default_factory=set)
    current: Step | None = None
    failed_step_id: int | None = None
    last_progress_write: float = 0.0


def plan(job: Job, names: list[str]) -> None:
    """Create `pending` rows for a job's declared steps, so operators see what is ahead."""
    Step.objects.bulk_create(
        [Step(job=job, position=i, name=name) for i, name in enumerate(names, start=1)]
    )


def job_progress(steps: list[Step]) -> dict[str, Any]:
    """Overall progress: steps done of planned, plus the running step's own progress."""
    planned = len(steps)
    done = sum(1 for s in steps if s.status == StepStatus.SUCCEEDED)
    current = next((s for s in steps if s.status == StepStatus.RUNNING), None)
    fraction = (done + ((current.progress_fraction or 0) if current else 0)) / planned \
        if planned else None
    return {
        "steps_done": done,
        "steps_planned": planned,
        "fraction": round(fraction, 4) if fraction is not None else None,
        "current_step": current.name if current else None,
        "current_progress": (
            {"current": current.progress_current, "total": current.progress_total,
             "message": current.progress_message}
            if current and current.progress_total is not None else None
        ),
    }


def validate_limits(current: dict[str, Any], proposed: Any) -> dict[str, Any]:
    """Check an operator's edit of a step's limits before it is saved.

    Only the settings the code declared may change, each keeping its type, and
    numbers stay positive: a typo must not become a silent new setting.
    """
    from django.core.exceptions import ValidationError

    if not isinstance(proposed, dict):
        raise ValidationError("Limits must be a JSON object, e.g. {\"max_tokens\": 4000}.")
    unknown = sorted(set(proposed) - set(current))
    if unknown:
        raise ValidationError(
            f"Unknown limit(s) {unknown}; this step declares {sorted(current) or 'none'}."
        )
    for key, value in proposed.items():
        expected = type(current[key])
        if isinstance(value, bool) != isinstance(current[key], bool) or not isinstance(
            value, (int, float) if expected is float else expected
        ):
            raise ValidationError(
                f"Limit {key!r} must be of type {expected.__name__}, got {value!r}."
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise ValidationError(f"Limit {key!r} must be positive, got {value!r}.")
    return {**current, **proposed}


def validate_plan(names: list[str] | tuple[str, ...]) -> list[str]:
    names = list(names)
    if not all(isinstance(n, str) and n and len(n) <= 200 for n in names):
        raise StepError(f"step names must be non-empty strings of at most 200 characters: {names}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StepError(f"step names must be unique within a job; repeated: {duplicates}")
    return names


def run_step(
    ctx: JobContext,
    name: str,
    fn: Callable[..., Any],
    *args: Any,
    max_attempts: int | None = None,
    timeout: int | None = None,
    limits: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Run `fn` as step `name` once per job; on later attempts return its stored result."""
    from jobs.runner import step_deadline  # the runner owns signals and timers

    state = ctx.steps
    if name in state.names_seen:
        raise DuplicateStepError(
            f"step {name!r} ran twice in one attempt of job {ctx.job_id}: step names must be "
            "unique within a job (add an index or id to the name inside loops)"
        )
    state.names_seen.add(name)
    if ctx.in_task_transaction:
        raise StepError(
            "ctx.step() needs each step to commit on its own: register the task with "
            "@task(steps=[...]) or @task(atomic=False)"
        )
    ctx.raise_if_cancelled()  # between steps is a safe point

    step = _get_or_create(ctx.job_id, name, max_attempts, timeout, limits)
    if step.status == StepStatus.SUCCEEDED:
        logger.debug("job %s step %s already succeeded; reusing its result", ctx.job_id, name)
        return step.result
    if step.max_attempts is not None and step.attempts >= step.max_attempts:
        raise PermanentError(
            f"step {name!r} used all {step.max_attempts} of its attempts; raise its "
            "max_attempts or limits and resume the job"
        )
    effective_limits = {**(limits or {}), **(step.limits or {})}
    if limits is not None:
        kwargs["limits"] = effective_limits

    now = timezone.now()
    Step.objects.filter(pk=step.pk).update(
        status=StepStatus.RUNNING, attempts=step.attempts + 1, started_at=now,
        finished_at=None, error_class="", error_message="", traceback="",
    )
    state.current = step
    state.failed_step_id = step.pk
    try:
        with transaction.atomic():
            with step_deadline(step.timeout, name):
                value = fn(*args, **kwargs)
            result = stored_json(value, f"the result of step {name!r}")
            _checkpoint(ctx, step, result)
    except BaseException as exc:
        _mark_failed(step, exc)
        raise
    finally:
        state.current = None
    state.failed_step_id = None
    return result


def report_progress(ctx: JobContext, current: int, total: int | None, message: str = "") -> None:
    """Record progress of the running step, at most once a second (and at the end)."""
    state = ctx.steps
    step = state.current
    if step is None:
        raise StepError("progress can only be reported from inside a step")
    now = time.monotonic()
    done = total is not None and current >= total
    if not done and now - state.last_progress_write < PROGRESS_MIN_INTERVAL:
        return
    state.last_progress_write = now
    Step.objects.filter(pk=step.pk).update(
        progress_current=max(current, 0), progress_total=total, progress_message=message[:255],
    )


def _get_or_create(
    job_id: Any, name: str, max_attempts: int | None, timeout: int | None,
    limits: dict[str, Any] | None,
) -> Step:
    step = Step.objects.filter(job_id=job_id, name=name).first()
    if step is None:
        position = (Step.objects.filter(job_id=job_id).aggregate(m=Max("position"))["m"] or 0) + 1
        step = Step.objects.create(job_id=job_id, name=name, position=position)
    # Code declares the step's defaults; an operator's edits to limits win (merged at run).
    changes: dict[str, Any] = {}
    if max_attempts is not None and step.max_attempts is None:
        changes["max_attempts"] = max_attempts
    if timeout is not None and step.timeout is None:
        changes["timeout"] = timeout
    if limits and not step.limits:
        changes["limits"] = stored_json(limits, f"the limits of step {name!r}")
    if changes:
        Step.objects.filter(pk=step.pk).update(**changes)
        for key, value in changes.items():
            setattr(step, key, value)
    return step


def _checkpoint(ctx: JobContext, step: Step, result: Any) -> None:
    """Mark the step succeeded, only while this attempt still owns the job."""
    owned = Job.objects.filter(
        pk=ctx.job_id, status=JobStatus.RUNNING, last_attempt_number=ctx.attempt_number
    ).select_for_update().exists()
    if not owned:
        raise StepLostOwnership(f"job {ctx.job_id} was taken from attempt {ctx.attempt_number}")
    Step.objects.filter(pk=step.pk).update(
        status=StepStatus.SUCCEEDED, result=result, finished_at=timezone.now(),
    )


def _mark_failed(step: Step, exc: BaseException) -> None:
    from jobs.transitions import ErrorInfo

    info = ErrorInfo.from_exception(exc)
    try:
        Step.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(
            status=StepStatus.FAILED, finished_at=timezone.now(),
            error_class=info.error_class, error_message=info.message, traceback=info.traceback,
        )
    except Exception:  # the database is gone; the attempt's own record will say so
        logger.exception("could not record the failure of step %s", step.name)
