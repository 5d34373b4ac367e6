"""Claim, run, record: what a cluster worker does with a job id.

django-q2 delivers only a job id (see `jobs.broker`); `execute` is the thin
shim it calls. Whatever the task does, the attempt ends in a database write:
success with its result, failure with class, message and traceback, timed out,
cancelled, or released at shutdown. If the worker dies before it can write,
its lease lapses and `jobs.reaper` writes `lost` for it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from uuid import UUID

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from jobs import conf, retry, transitions
from jobs.api import Task, get_task
from jobs.context import JobCancelled, JobContext, _current
from jobs.exceptions import PermanentError, UnknownTaskError
from jobs.models import AttemptStatus, JobStatus
from jobs.retry import Backoff
from jobs.serialization import stored_json
from jobs.steps import StepLostOwnership
from jobs.transitions import Claimed, ErrorInfo, LostOwnership

logger = logging.getLogger("jobs.runner")

# Signals the cluster's main process sends its workers (see jobs/management/commands/qcluster.py).
DRAIN_SIGNAL = signal.SIGUSR2  # finish the current job, start no new one
INTERRUPT_SIGNAL = signal.SIGUSR1  # grace period over: give the current job back now


class JobTimeout(BaseException):
    """The attempt overran its timeout. A BaseException so `except Exception` in
    task code cannot swallow it."""


class StepTimeout(JobTimeout):
    """One step overran its own timeout."""


class WorkerInterrupted(BaseException):
    """The worker is shutting down and the grace period is over."""


class _WorkerState:
    draining = False
    in_task = False


_state = _WorkerState()
RESULT = "the task's result"


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
    if _state.draining:
        # Shutting down: leave it queued and let another cluster have it now.
        transitions.clear_reservation(job_id)
        return None
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
    cancel_requested = threading.Event()
    try:
        task: Task | None = get_task(job.task_name)
    except UnknownTaskError as exc:
        task, missing = None, exc
    token = _current.set(JobContext(
        job_id=job.pk,
        task_name=job.task_name,
        attempt_number=claimed.attempt.number,
        attempt_count=job.attempt_count,
        max_attempts=job.max_attempts,
        in_task_transaction=bool(task and task.atomic),
        cancel_event=cancel_requested,
    ))
    heartbeat = Heartbeat(claimed, conf.get().lease_seconds, cancel_requested)
    heartbeat.start()
    try:
        if task is None:
            # A worker running older code than the web process: retry later.
            return _record_failure(claimed, missing, None, _current.get())
        return _run_task(claimed, task, _current.get())
    finally:
        heartbeat.stop()
        _current.reset(token)


def _run_task(claimed: Claimed, task: Task, ctx: JobContext) -> JobStatus | None:
    job = claimed.job
    timeout = task.timeout or conf.get().default_timeout
    try:
        if task.atomic:
            with transaction.atomic():
                result = stored_json(_invoke(task, job.args, job.kwargs, timeout), RESULT)
                transitions.succeed(claimed, result)
        else:
            result = stored_json(_invoke(task, job.args, job.kwargs, timeout), RESULT)
            transitions.succeed(claimed, result)
    except (LostOwnership, StepLostOwnership):
        logger.warning("job %s was taken from attempt %s (reaped or cancelled); "
                       "its outcome is discarded", job.pk, claimed.attempt.number)
        return None
    except JobTimeout as exc:
        error = TimeoutError(
            str(exc) if isinstance(exc, StepTimeout)
            else f"the attempt exceeded its timeout of {timeout} s and was stopped"
        )
        return _record_failure(claimed, error, task, ctx, AttemptStatus.TIMED_OUT)
    except JobCancelled:
        return _settle(lambda: transitions.stop_cancelled(claimed), claimed,
                       JobStatus.CANCELLED)
    except WorkerInterrupted:
        return _settle(lambda: transitions.release(claimed), claimed, JobStatus.QUEUED)
    except Exception as exc:
        return _record_failure(claimed, exc, task, ctx)
    logger.info("job %s (%s) succeeded on attempt %s", job.pk, job.task_name,
                claimed.attempt.number)
    return JobStatus.SUCCEEDED


def _invoke(task: Task, args: list, kwargs: dict, timeout: int) -> Any:
    with _deadline(timeout, JobTimeout):
        _state.in_task = True
        try:
            return task.func(*args, **kwargs)
        finally:
            _state.in_task = False


def _settle(write: Any, claimed: Claimed, status: JobStatus) -> JobStatus | None:
    try:
        write()
    except LostOwnership:
        return None
    logger.info("job %s attempt %s ended: %s", claimed.job.pk, claimed.attempt.number, status)
    return status


def _record_failure(
    claimed: Claimed,
    exc: BaseException,
    task: Task | None,
    ctx: JobContext,
    attempt_status: AttemptStatus = AttemptStatus.FAILED,
) -> JobStatus | None:
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
        status = transitions.fail(
            claimed, ErrorInfo.from_exception(exc), retry_at=when,
            attempt_status=attempt_status, now=now, step_id=ctx.steps.failed_step_id,
        )
    except LostOwnership:
        logger.warning("job %s failed after it was taken from attempt %s",
                       job.pk, claimed.attempt.number)
        return None
    logger.warning("job %s (%s) attempt %s failed: %s -> %s", job.pk, job.task_name,
                   claimed.attempt.number, exc.__class__.__name__, status)
    return status


class Heartbeat(threading.Thread):
    """Renews the lease from the worker process while the task runs.

    It runs beside the task, not inside it, so a task need not cooperate to
    stay alive; and it notices a cancel request on the way.
    """

    def __init__(self, claimed: Claimed, lease_seconds: float, cancel: threading.Event):
        super().__init__(name=f"heartbeat-{claimed.job.pk}", daemon=True)
        self.claimed = claimed
        self.lease_seconds = lease_seconds
        self.cancel = cancel
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        try:
            while not self._stop_event.wait(interval):
                try:
                    close_old_connections()
                    owned, cancel = transitions.renew_lease(
                        self.claimed, lease_seconds=self.lease_seconds
                    )
                except DatabaseError:
                    logger.warning("heartbeat for job %s failed; retrying",
                                   self.claimed.job.pk, exc_info=True)
                    connection.close()
                    continue
                if not owned:
                    self.lost.set()
                    return
                if cancel:
                    self.cancel.set()
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


@contextmanager
def _deadline(seconds: float, error: Callable[[], BaseException]) -> Iterator[None]:
    """Raise `error()` in the running code after `seconds`.

    Main thread only (POSIX interval timer). Nests: an inner deadline (a step's)
    re-arms the outer one (the job's) with what is left of it on exit, and is
    not armed at all when the outer one would fire first.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield
        return
    started = time.monotonic()

    def on_alarm(signum: int, frame: Any) -> None:
        raise error()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def step_deadline(seconds: int | None, name: str) -> AbstractContextManager[None]:
    """A step's own timeout inside the job's (see jobs.steps)."""
    if not seconds:
        return nullcontext()
    return _deadline(
        seconds, lambda: StepTimeout(f"step {name!r} exceeded its timeout of {seconds} s")
    )


def install_worker_signal_handlers(**_: Any) -> None:
    """In each cluster worker: drain on SIGUSR2, give the job back on SIGUSR1.

    SIGTERM keeps its default (die): django-q2's guard uses it to end a worker
    stuck past its hard timeout, where a Python handler would never run.
    """

    def drain(signum: int, frame: Any) -> None:
        _state.draining = True

    def interrupt(signum: int, frame: Any) -> None:
        _state.draining = True
        if _state.in_task:
            raise WorkerInterrupted()

    signal.signal(DRAIN_SIGNAL, drain)
    signal.signal(INTERRUPT_SIGNAL, interrupt)
