"""Claim, run, record: what a cluster worker does with a job id.

django-q2 delivers only a job id (see `jobs.worker.broker`); `execute` is the
thin shim it calls. Whatever the task does, the attempt ends in a database
write: success with its result, failure with class, message and traceback,
timed out, cancelled, or released at shutdown. If the worker dies before it
can write, its lease lapses and `jobs.worker.reaper` writes `lost` for it.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar
from uuid import UUID, uuid4

from django.db import Error as DatabaseError
from django.utils import timezone

from jobs import conf, database, signals
from jobs.core import clusters, reservations, retry, tracing, transitions
from jobs.core.context import AttemptLost, JobCancelled, JobContext, running
from jobs.core.registry import Task, get_task
from jobs.core.retry import Backoff
from jobs.core.serialization import stored_json
from jobs.core.transitions import Claimed, ErrorInfo
from jobs.database import connection
from jobs.exceptions import LostOwnership, PermanentError, UnknownTaskError
from jobs.models import AttemptStatus, Job, JobStatus
from jobs.worker import connections, heartbeat, sessions
from jobs.worker.steps import Steps
from jobs.worker.timeouts import JobTimeout, StepTimeout, WorkerInterrupted, deadline

logger = logging.getLogger("jobs.runner")

# Signals the cluster's main process sends its workers (see jobs/management/commands/qcluster.py).
DRAIN_SIGNAL = signal.SIGUSR2  # finish the current job, start no new one
INTERRUPT_SIGNAL = signal.SIGUSR1  # grace period over: give the current job back now


class _WorkerState:
    draining = False
    in_task = False
    beat: heartbeat.Beat | None = None  # the running attempt's, for the outcome retries
    error = ""  # the class of what ended the running attempt, for its end line


_state = _WorkerState()
RESULT = "the task's result"
# Outcome writes while the database is away: first wait, longest wait, and the margin
# kept before the lease lapses (seconds).
OUTCOME_RETRY_FIRST = 0.1
OUTCOME_RETRY_MAX = 2.0
OUTCOME_MARGIN = 1.0
T = TypeVar("T")


def execute(job_id: str) -> None:
    """django-q2's entry point. Never raises: outcomes are recorded, not returned."""
    try:
        run_job(job_id)
    except Exception:
        # Recording itself failed (database gone). The lease runs out and the
        # reaper settles the job; say so loudly meanwhile.
        logger.exception("could not record the outcome of job %s", job_id)


class WorkerIdentity(NamedTuple):
    """Who claims: host and pid for people, `id` (drawn when the worker spawned) and its
    cluster's id for comparisons, since host and pid repeat across containers."""

    host: str
    pid: int
    id: UUID
    cluster: UUID | None


_identity: WorkerIdentity | None = None


def new_worker_identity() -> WorkerIdentity:
    """Draw this process's identity afresh (at spawn: a forked worker must not keep
    its parent's)."""
    global _identity
    _identity = WorkerIdentity(socket.gethostname(), os.getpid(), uuid4(),
                               clusters.current_cluster_id())
    return _identity


def worker_identity() -> WorkerIdentity:
    """This process's identity; drawn on first use if it did not spawn as a worker."""
    if _identity is None or _identity.pid != os.getpid():
        return new_worker_identity()
    return _identity


def run_job(job_id: UUID | str) -> JobStatus | None:
    """Run one job if this process wins the claim; return the status it left."""
    if _state.draining:
        # Shutting down: leave it queued and let another cluster have it now.
        reservations.release(job_id)
        return None
    me = worker_identity()
    connections.skip_health_check_if_fresh()
    claimed = connections.retry_on_new_connection(lambda: transitions.claim(
        job_id, worker_host=me.host, worker_pid=me.pid, lease_seconds=conf.get().lease_seconds,
        worker_id=me.id, worker_cluster=me.cluster,
    ))
    if claimed is None:
        logger.debug("job %s not claimed: taken by another worker, not due, or gone", job_id)
        return None
    signals.send(signals.job_started, Job, job=claimed.job, attempt=claimed.attempt)
    # job_finished is sent by the transition that records the outcome (jobs.core.transitions),
    # inside the `except` that caught a failure, so receivers see it as the current exception.
    return _run_claimed(claimed)


def _run_claimed(claimed: Claimed) -> JobStatus | None:
    job = claimed.job
    try:
        task: Task | None = get_task(job.task_name)
    except UnknownTaskError as exc:
        task, missing = None, exc
    steps = Steps()
    ctx = JobContext(
        job_id=job.pk,
        task_name=job.task_name,
        attempt_number=claimed.attempt.number,
        attempt_count=job.attempt_count,
        max_attempts=job.max_attempts,
        in_task_transaction=bool(task and task.atomic),
        steps=steps,
    )
    beat = heartbeat.watch(claimed, conf.get().lease_seconds, ctx.cancel_event, ctx.lost_event)
    steps.beat = _state.beat = beat
    _state.error = ""
    started = time.monotonic()
    try:
        with running(ctx), tracing.attempt_span(job.task_name, job.pk, claimed.attempt.number,
                                                job.traceparent) as span:
            logger.info("job %s (%s) attempt %s of %s started", job.pk, job.task_name,
                        claimed.attempt.number, job.max_attempts)
            if task is None:
                # A worker running older code than the web process: retry later.
                status = _record_failure(claimed, missing, None, ctx)
            else:
                status = _run_task(claimed, task, ctx)
            if span is not None:
                span.set_attribute("job.outcome", str(status or "discarded"))
            _log_end(claimed, status, time.monotonic() - started)
            return status
    finally:
        _state.beat = None
        heartbeat.unwatch(beat)


def _log_end(claimed: Claimed, status: JobStatus | None, seconds: float) -> None:
    """The attempt's one end line: task, job, attempt, what it left and how long it took.

    Written from what the worker holds (no query), inside the job's log context so a
    formatter's `%(job)s` fills in too. A failed attempt is a warning, naming the error's
    class (its message and traceback are on the Attempt row); every other end is info.
    """
    job = claimed.job
    outcome = str(status) if status is not None else "discarded (no longer this worker's)"
    if _state.error:
        outcome = f"failed with {_state.error}, job {outcome}"
    logger.log(logging.WARNING if _state.error else logging.INFO,
               "job %s (%s) attempt %s ended: %s in %.3f s", job.pk, job.task_name,
               claimed.attempt.number, outcome, seconds)


def _run_task(claimed: Claimed, task: Task, ctx: JobContext) -> JobStatus | None:
    job = claimed.job
    settings = conf.get()
    timeout = task.timeout or settings.default_timeout
    try:
        written = False
        if task.atomic:
            with connections.task_transaction() as tx:
                value = _invoke(task, job.args, job.kwargs, timeout)
                result = stored_json(value, RESULT, settings.max_result_bytes)
                if not _nothing_sent(tx):
                    transitions.succeed(claimed, result)
                    written = True
        else:
            value = _invoke(task, job.args, job.kwargs, timeout)
            result = stored_json(value, RESULT, settings.max_result_bytes)
        if not written:
            _write_outcome(lambda: transitions.succeed(claimed, result),
                           already=lambda: _succeeded_by(claimed))
        connections.answered()
    except (LostOwnership, AttemptLost):
        logger.warning("job %s was taken from attempt %s (reaped, or its lease lapsed "
                       "unrenewed); its outcome is discarded", job.pk, claimed.attempt.number)
        return None
    except JobTimeout as exc:
        # A timeout that fired is the outcome, even when the task caught it and went
        # on (jobs.worker.timeouts.deadline): the traceback shows where it was
        # stopped, and what it did after, via the cause.
        error = TimeoutError(
            str(exc) if isinstance(exc, StepTimeout)
            else f"the attempt exceeded its timeout of {timeout} s and was stopped"
        )
        error.__cause__ = exc
        return _record_failure(claimed, error, task, ctx, AttemptStatus.TIMED_OUT)
    except JobCancelled:
        return _settle(lambda: transitions.stop_cancelled(claimed), claimed,
                       JobStatus.CANCELLED)
    except WorkerInterrupted:
        return _settle(lambda: transitions.release(claimed), claimed, JobStatus.QUEUED)
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... from task code
        # Whatever the task raised is its failure, recorded as such; the worker goes on.
        return _record_failure(claimed, exc, task, ctx)
    return JobStatus.SUCCEEDED


def _nothing_sent(tx: connections.TaskTransaction) -> bool:
    """Whether the task's transaction is still empty: no statement sent, nothing to commit.

    Its transaction begins with its first statement (psycopg by itself, SQLite by
    `connections.task_transaction`), so an atomic task that never touched the
    database leaves it idle; its success is then one autocommit statement instead
    of BEGIN, the statement and COMMIT. Not when the task registered on_commit
    callbacks: they must follow the success.
    """
    return not connection.run_on_commit and tx.idle


def _invoke(task: Task, args: list, kwargs: dict, timeout: int) -> Any:
    with deadline(timeout, JobTimeout):
        _state.in_task = True
        try:
            return task.func(*args, **kwargs)
        finally:
            _state.in_task = False


def _write_outcome(write: Callable[[], T], already: Callable[[], bool] | None = None) -> T | None:
    """Write an outcome; while the database cannot be reached (a restart, a failover),
    try again with backoff and jitter until this attempt's lease would lapse, so an
    outage shorter than a lease loses no attempt and none is reaped as lost while
    its worker is alive.

    Inside the task's own transaction nothing is retried: its writes died with the
    connection, and the failure that follows is the truth. A retry that is refused
    because an earlier write did commit (the reply was lost) counts as written.
    """
    delay, tries = OUTCOME_RETRY_FIRST, 0
    while True:
        try:
            written = write()
        except connections.ConnectionErrors:
            if not database.get_autocommit():
                raise
            left = _lease_left()
            if left < delay:
                logger.error("could not record an outcome after %s tries; the lease lapses "
                             "in %.1f s and the reaper will settle the attempt", tries + 1,
                             max(left, 0.0))
                raise
            if tries == 0:
                logger.warning("the database could not be reached while recording an "
                               "outcome; trying again for up to %.0f s", left)
            connection.close()
            time.sleep(random.uniform(delay / 2, delay))
            delay, tries = min(delay * 2, OUTCOME_RETRY_MAX), tries + 1
            continue
        except LostOwnership:
            if tries and already is not None and already():
                return None
            raise
        if tries:
            logger.warning("recorded the outcome after %s retries", tries)
        return written


def _lease_left() -> float:
    """Seconds until the running attempt's lease lapses, as its heartbeat last renewed
    it, less a margin for the write itself to commit before the reaper may act."""
    beat = _state.beat
    if beat is None:
        return conf.get().lease_seconds / 2
    return beat.renewed_at + beat.lease_seconds - OUTCOME_MARGIN - time.monotonic()


def _succeeded_by(claimed: Claimed) -> bool:
    return Job.objects.filter(pk=claimed.job.pk, status=JobStatus.SUCCEEDED,
                              last_attempt_number=claimed.attempt.number).exists()


def _settle(write: Callable[[], None], claimed: Claimed, status: JobStatus) -> JobStatus | None:
    try:
        _write_outcome(write)
    except LostOwnership:
        return None
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
    _state.error = exc.__class__.__name__
    failed_step = ctx.steps.failed_step_id if isinstance(ctx.steps, Steps) else None
    error = ErrorInfo.from_exception(exc)
    try:
        status = _write_outcome(lambda: transitions.fail(
            claimed, error, retry_at=when, attempt_status=attempt_status, now=now,
            step_id=failed_step,
        ))
    except LostOwnership:
        logger.warning("job %s failed after it was taken from attempt %s",
                       job.pk, claimed.attempt.number)
        return None
    return status


def on_worker_spawn(**_: Any) -> None:
    """django-q2's post_spawn, in each new worker: signals, and both of the worker's
    connections (its own and its heartbeat's) opened now, while the database has
    slots to give, and kept (CONN_MAX_AGE). Its identity is drawn now too, and its
    sessions are named after it and bounded (jobs.worker.sessions)."""
    me = new_worker_identity()
    sessions.configure_worker(me.id, conf.get().lease_seconds)
    install_worker_signal_handlers()
    heartbeat.ensure_started()
    try:
        connection.ensure_connection()
    except DatabaseError:  # the first claim connects again; nothing is lost
        logger.warning("worker %s could not connect at start; will retry on its first job",
                       os.getpid(), exc_info=True)


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

