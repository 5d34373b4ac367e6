"""Claim, run, record: what a cluster worker does with a job id.

django-q2 delivers only a job id (see `jobs.broker`); `execute` is the thin
shim it calls. Whatever the task does, the attempt ends in a database write:
success with its result, or failure with class, message and traceback.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from jobs import conf, retry, transitions
from jobs.api import Task, get_task
from jobs.context import JobContext, _current
from jobs.exceptions import PermanentError
from jobs.models import JobStatus
from jobs.retry import Backoff
from jobs.transitions import Claimed, ErrorInfo, LostOwnership

logger = logging.getLogger("jobs.runner")


def execute(job_id: str) -> None:
    """django-q2's entry point. Never raises: outcomes are recorded, not returned."""
    try:
        run_job(job_id)
    except Exception:
        # Recording itself failed (database gone). The lease runs out and the
        # reaper settles the job; say so loudly meanwhile.
        logger.exception("could not record the outcome of job %s", job_id)


def worker_identity() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def run_job(job_id: UUID | str) -> JobStatus | None:
    """Run one job if this process wins the claim; return the status it left."""
    host, pid = worker_identity()
    claimed = transitions.claim(
        job_id, worker_host=host, worker_pid=pid, lease_seconds=conf.get().lease_seconds
    )
    if claimed is None:
        logger.debug("job %s not claimed: taken by another worker, not due, or gone", job_id)
        return None
    return _run_claimed(claimed)


def _run_claimed(claimed: Claimed) -> JobStatus | None:
    job = claimed.job
    token = _current.set(JobContext(
        job_id=job.pk,
        task_name=job.task_name,
        attempt_number=claimed.attempt.number,
        attempt_count=job.attempt_count,
        max_attempts=job.max_attempts,
    ))
    try:
        return _run_task(claimed)
    finally:
        _current.reset(token)


def _run_task(claimed: Claimed) -> JobStatus | None:
    job = claimed.job
    try:
        task = get_task(job.task_name)
    except Exception as exc:
        # A worker running older code than the web process: retry later.
        return _record_failure(claimed, exc, None)
    try:
        if task.atomic:
            with transaction.atomic():
                result = _as_json(task.func(*job.args, **job.kwargs))
                transitions.succeed(claimed, result)
        else:
            result = _as_json(task.func(*job.args, **job.kwargs))
            transitions.succeed(claimed, result)
    except LostOwnership:
        logger.warning("job %s was taken from attempt %s; its outcome is discarded",
                       job.pk, claimed.attempt.number)
        return None
    except Exception as exc:
        return _record_failure(claimed, exc, task)
    logger.info("job %s (%s) succeeded on attempt %s", job.pk, job.task_name,
                claimed.attempt.number)
    return JobStatus.SUCCEEDED


def _record_failure(claimed: Claimed, exc: BaseException, task: Task | None) -> JobStatus | None:
    job = claimed.job
    now = timezone.now()
    when = retry.retry_at(
        attempt_count=job.attempt_count,
        max_attempts=job.max_attempts,
        backoff=task.effective_backoff() if task else Backoff.from_settings(),
        permanent=isinstance(exc, PermanentError),
        now=now,
    )
    try:
        status = transitions.fail(claimed, ErrorInfo.from_exception(exc), retry_at=when, now=now)
    except LostOwnership:
        logger.warning("job %s failed after it was taken from attempt %s",
                       job.pk, claimed.attempt.number)
        return None
    logger.warning("job %s (%s) attempt %s failed: %s -> %s", job.pk, job.task_name,
                   claimed.attempt.number, exc.__class__.__name__, status)
    return status


def _as_json(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the task returned a {type(value).__name__}, which cannot be stored as JSON: {exc}"
        ) from None
