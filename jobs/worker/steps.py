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
non-atomic. Every status or progress write goes through
`jobs.core.transitions`, fenced by the attempt that runs the step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db.models import Max

from jobs import conf
from jobs.core import transitions
from jobs.core.context import JobContext
from jobs.core.serialization import stored_json
from jobs.core.transitions import ErrorInfo
from jobs.exceptions import DuplicateStepError, PermanentError, StepError
from jobs.models import Step, StepStatus
from jobs.worker import connections, heartbeat
from jobs.worker.timeouts import WorkerInterrupted, fired, step_deadline

logger = logging.getLogger("jobs.steps")

PROGRESS_MIN_INTERVAL = 1.0  # seconds between progress writes for one step
MAX_PROGRESS_MESSAGE = transitions.MAX_PROGRESS_MESSAGE


class Steps:
    """The step runner of one attempt (a `jobs.core.context.StepRunner`).

    It also remembers what the runner reads when the attempt ends: the step
    that failed, so the Attempt row can point at it.
    """

    def __init__(self) -> None:
        self.names_seen: set[str] = set()
        self.current: Step | None = None
        self.failed_step_id: int | None = None
        self.last_progress_write = 0.0
        # The attempt's heartbeat (set by the runner): it writes progress reports on its
        # own connection, so they show while the step's transaction is open.
        self.beat: heartbeat.Beat | None = None

    def run(self, ctx: JobContext, name: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any], *, max_attempts: int | None, timeout: int | None,
            limits: dict[str, Any] | None) -> Any:
        """Run `fn` as step `name` once per job; on later attempts return its stored result."""
        if name in self.names_seen:
            raise DuplicateStepError(
                f"step {name!r} ran twice in one attempt of job {ctx.job_id}: step names must "
                "be unique within a job (add an index or id to the name inside loops)"
            )
        self.names_seen.add(name)
        if ctx.in_task_transaction:
            raise StepError(
                "ctx.step() needs each step to commit on its own: register the task with "
                "@task(steps=[...]) or @task(atomic=False)"
            )
        ctx.raise_if_cancelled()  # between steps is a safe point
        if (late := fired()) is not None:
            # The attempt's (or an earlier step's) deadline fired and the task caught
            # it: the attempt is over, and no step of it starts or checkpoints now.
            raise late

        step = _declare(ctx.job_id, name, max_attempts, timeout, limits)
        if step.status == StepStatus.SUCCEEDED:
            logger.debug("job %s step %s already succeeded; reusing its result", ctx.job_id, name)
            return step.result
        if step.max_attempts is not None and step.attempts >= step.max_attempts:
            raise PermanentError(
                f"step {name!r} used all {step.max_attempts} of its attempts; raise its "
                "max_attempts or limits and resume the job"
            )
        call_kwargs = dict(kwargs)
        if limits is not None:
            call_kwargs["limits"] = {**limits, **(step.limits or {})}

        transitions.start_step(ctx.job_id, ctx.attempt_number, step.pk)
        self.current = step
        self.failed_step_id = step.pk
        try:
            # Begun with the step's first statement: on SQLite a step that computes
            # before it writes leaves the write lock (and its progress) to others.
            with connections.task_transaction():
                with step_deadline(step.timeout, name):
                    value = fn(*args, **call_kwargs)
                result = stored_json(value, f"the result of step {name!r}",
                                     conf.get().max_result_bytes)
                transitions.checkpoint_step(ctx.job_id, ctx.attempt_number, step.pk, result)
        except WorkerInterrupted:
            raise  # not a failure: the release puts the step back to pending
        except BaseException as exc:
            _record_step_failure(ctx, step, exc)
            raise
        finally:
            self.current = None
        self.failed_step_id = None
        return result

    def progress(self, ctx: JobContext, current: int, total: int | None, message: str) -> None:
        """Record progress of the running step, at most once a second (and at the end).

        Checked before anything is written, every call (`transitions.progress_values`):
        figures that are not ints from 0 to 2**63 - 1, or a `current` above `total`,
        raise InvalidProgress naming the argument and the rule; the message is made
        storable instead (NULs dropped, lone surrogates replaced, cut to 255
        characters), so no message can fail the step or the job.
        """
        step = self.current
        if step is None:
            raise StepError("progress can only be reported from inside a step")
        ctx.raise_if_lost()  # a safe point: the step's work may be another worker's now
        values = transitions.progress_values(current, total, message)
        current, total = values[0], values[1]
        now = time.monotonic()
        done = total is not None and current >= total
        if not done and now - self.last_progress_write < PROGRESS_MIN_INTERVAL:
            return
        self.last_progress_write = now
        if done or not heartbeat.report_progress(self.beat, step.pk, *values):
            # The last report is also the step's own: it commits with the step.
            transitions.step_progress(ctx.attempt_number, step.pk, *values)


def _declare(
    job_id: Any, name: str, max_attempts: int | None, timeout: int | None,
    limits: dict[str, Any] | None,
) -> Step:
    """The step's row, created on first use; the code's defaults fill what is unset.

    An operator's edits win: limits they raised are merged over the code's at run time.
    """
    step = Step.objects.filter(job_id=job_id, name=name).first()
    if step is None:
        position = (Step.objects.filter(job_id=job_id).aggregate(m=Max("position"))["m"] or 0) + 1
        step = Step.objects.create(job_id=job_id, name=name, position=position)
    changes: dict[str, Any] = {}
    if max_attempts is not None and step.max_attempts is None:
        changes["max_attempts"] = max_attempts
    if timeout is not None and step.timeout is None:
        changes["timeout"] = timeout
    if limits and not step.limits:
        changes["limits"] = stored_json(limits, f"the limits of step {name!r}",
                                        conf.get().max_arguments_bytes)
    if changes:
        Step.objects.filter(pk=step.pk).update(**changes)
        for key, value in changes.items():
            setattr(step, key, value)
    return step


def _record_step_failure(ctx: JobContext, step: Step, exc: BaseException) -> None:
    try:
        transitions.fail_step(ctx.attempt_number, step.pk, ErrorInfo.from_exception(exc))
    except Exception:  # the database is gone; the attempt's own record will say so
        logger.exception("could not record the failure of step %s", step.name)
