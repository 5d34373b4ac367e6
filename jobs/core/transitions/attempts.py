"""The transitions of one attempt: claim, succeed, fail (retry, bury, or a pending
cancel), stop_cancelled, release, and the lease's renewal.

Each is one conditional UPDATE fenced by the job's status and by the attempt
number, so a worker that lost its job (reaped after its lease ran out, say)
changes nothing any more. The reaper settles a lost attempt with `fail`, its
`guard` "lease expired". The SQL texts of the hot ones (claim, succeed, renew)
are the dialect's (jobs.dialect): one statement on PostgreSQL, one short
transaction on SQLite.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from jobs import database, dialect
from jobs.core import causes, statements
from jobs.core.clock import database_now, database_now_plus
from jobs.core.transitions.errors import ErrorInfo
from jobs.core.transitions.machine import (
    BURY,
    RELEASE,
    RETRY,
    STOP_CANCELLED,
    SUCCEED,
    Claimed,
    apply_returning,
    as_datetime,
    attempt_steps,
    close_attempt,
    close_running_steps,
    closed,
    finished,
    owned,
    update_returning,
)
from jobs.core.transitions.machine import LEASE_CLEARED as _LEASE_CLEARED
from jobs.database import connection
from jobs.exceptions import JobCancelled, LostOwnership, WorkerShutdown
from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus, StepStatus


def claim(
    job_id: UUID | str,
    *,
    worker_host: str,
    worker_pid: int,
    lease_seconds: float,
    now: datetime | None = None,
    worker_id: UUID | None = None,
    worker_cluster: UUID | None = None,
) -> Claimed | None:
    """queued | retrying -> running, and open an Attempt; None if another won, or if
    the job's queue is paused (jobs.core.queues), or if it is not due yet.

    Due, the start and the lease are the database's clock (`run_after <=
    statement_timestamp()`, the lease that clock plus `lease_seconds`), read
    inside the statement itself: a worker whose own clock is skewed neither
    starts a job early nor late, and pays no round trip to read the clock. The
    attempt's `started_at` is the job's, as the statement returned it.

    On PostgreSQL one statement does both (a data-modifying CTE): no BEGIN, no
    COMMIT, one round trip. Run in autocommit (as the worker does), its commit
    does not wait for the WAL flush (`synchronous_commit` off for that
    transaction only): every later write of the attempt that is durable flushes
    the WAL up to and past the claim, so nothing durable can outlive its claim,
    and a crash of the database server itself within the WAL writer's delay
    (under a second) can only undo a claim that had no durable effect yet, the
    job then truthfully queued again (docs/architecture.md, "Crashes").
    Elsewhere one short transaction.
    """
    owner = f"{worker_host}:{worker_pid}"
    ids = (worker_id, worker_cluster)
    if dialect.current().one_statement_writes:
        return _claim_in_one_statement(job_id, worker_host, worker_pid, owner, lease_seconds,
                                       now, ids)
    now = now or timezone.now()  # SQLite runs in-process: this clock is the database's
    lease = now + timedelta(seconds=lease_seconds)
    return _claim_in_one_transaction(job_id, worker_host, worker_pid, owner, lease, now, ids)




def _claim_in_one_transaction(job_id: UUID | str, host: str, pid: int, owner: str,
                              lease: datetime, now: datetime,
                              ids: tuple[UUID | None, UUID | None]) -> Claimed | None:
    """Elsewhere (SQLite): the same two writes in one short transaction, in plain SQL
    (building them with the ORM cost more than running them)."""
    params = {"id": _prep(Job, "id", UUID(str(job_id))), "now": _prep(Job, "started_at", now),
              "lease": _prep(Job, "lease_expires_at", lease), "owner": owner}
    with database.atomic(savepoint=False):
        row = statements.fetchone(
            dialect.current().claim_job_sql, params)
        if row is None:
            return None
        job = statements.instance(Job, row)
        (attempt_id,) = statements.fetchone(dialect.current().open_attempt_sql, {
            **params, "number": job.last_attempt_number, "host": host, "pid": pid,
            "worker_id": _prep(Attempt, "worker_id", ids[0]),
            "worker_cluster": _prep(Attempt, "worker_cluster", ids[1])})
    return _claimed(job, attempt_id, host, pid, ids)


def _prep(model: type[Any], name: str, value: Any) -> Any:
    """A value as the field writes it on this database (SQLite: UUIDs as hex, say)."""
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def _claimed(job: Job, attempt_id: int, host: str, pid: int,
             ids: tuple[UUID | None, UUID | None]) -> Claimed:
    attempt = Attempt(pk=attempt_id, job=job, number=job.last_attempt_number,
                      status=AttemptStatus.RUNNING, started_at=job.started_at, worker_host=host,
                      worker_pid=pid, worker_id=ids[0], worker_cluster=ids[1])
    attempt._state.adding = False
    return Claimed(job=job, attempt=attempt)


def _claim_in_one_statement(job_id: UUID | str, host: str, pid: int, owner: str,
                            lease_seconds: float, now: datetime | None,
                            ids: tuple[UUID | None, UUID | None]) -> Claimed | None:
    params = {"id": UUID(str(job_id)), "now": now, "owner": owner,
              "lease": timedelta(seconds=lease_seconds), "host": host, "pid": pid,
              "worker_id": ids[0], "worker_cluster": ids[1]}
    row = statements.fetchone(dialect.current().claim_sql(database.get_autocommit()), params)
    if row is None:
        return None
    return _claimed(statements.instance(Job, row), row[-1], host, pid, ids)


def succeed(claimed: Claimed, result: Any, *, now: datetime | None = None) -> None:
    """running -> succeeded, job and attempt together. Call inside the task's transaction
    when it is atomic. On PostgreSQL it is one statement, with no savepoint around it,
    and the finish is the database's clock (the statement's own time), returned by it."""
    d = dialect.current()
    if d.one_statement_writes:
        params = _succeed_params(d, claimed, result, now)
        job_moved, attempt_closed, now = statements.fetchone(d.succeed_sql, params)
    else:
        now = now or timezone.now()  # SQLite runs in-process: this clock is the database's
        params = _succeed_params(d, claimed, result, now)
        # Inside the task's transaction no savepoint: a refusal rolls the task back.
        with database.atomic(savepoint=False):
            job_moved = statements.fetchone(d.succeed_job_sql, params) is not None
            closing = statements.fetchone(d.succeed_attempt_sql, params) if job_moved else None
            attempt_closed = job_moved and bool(closing)
    if not job_moved:
        raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
    if attempt_closed:
        closed(claimed.attempt, {"status": AttemptStatus.SUCCEEDED, "finished_at": now,
                                 "duration": now - claimed.attempt.started_at,
                                 "retry_at": None})
    finished(claimed.job, claimed.attempt, SUCCEED.target)


def _succeed_params(d: dialect.Dialect, claimed: Claimed, result: Any, now: datetime | None,
                    ) -> dict[str, Any]:
    params = {
        "id": _prep(Job, "id", claimed.job.pk), "number": claimed.attempt.number,
        "attempt": claimed.attempt.pk,
        "result": Job._meta.get_field("result").get_db_prep_save(result, connection),
        "now": _prep(Job, "finished_at", now),
    }
    if now is not None and not d.clock_in_statement:
        params["duration"] = _prep(Attempt, "duration", now - claimed.attempt.started_at)
    return params


def fail(
    claimed: Claimed,
    error: ErrorInfo,
    *,
    retry_at: datetime | None,
    attempt_status: AttemptStatus = AttemptStatus.FAILED,
    now: datetime | None = None,
    guard: Q | None = None,
    step_id: int | None = None,
) -> JobStatus:
    """running -> retrying (at `retry_at`) or, when it is None, -> dead with a DeadLetter.

    A pending cancel wins over a retry: when an operator asked the job to stop
    (`cancel_requested_at`), the failure is recorded as it happened (the attempt
    `failed`, `timed_out` or `lost`, with its error) and the job goes cancelled
    instead of retrying. The same conditional UPDATE decides it from the row
    as it is when written, so a cancel that arrives between the failure and the
    write still wins. Out of retries, the job goes dead whether or not a cancel
    was asked: it would not have run again either way, and its failure is
    dead-lettered.

    `guard` narrows the match further: the reaper passes "lease expired", so a
    heartbeat that renewed the lease a moment ago wins over the reaper.

    Clocks: the retry is due at the database's clock plus the backoff, the backoff
    being `retry_at - now` (the caller's clock, or this host's when `now` is None).
    The failure's times (`last_failed_at`, `finished_at`, the attempt's end) are the
    database's clock, or `now` when the caller passes one.
    """
    # The caller computed `retry_at` from its own clock (now + backoff): only the
    # backoff is taken from it, and the retry is due at the database's clock plus
    # that backoff, so a host whose clock is skewed neither hurries nor delays it.
    backoff = None if retry_at is None else retry_at - (now or timezone.now())
    where = owned(claimed) & (guard or Q())
    with database.atomic():
        failed = {"last_error": error.preview, "last_failed_at": database_now(now),
                  "failure_cause": causes.cause(error.error_class, error.message)}
        if backoff is not None:
            row = _retry_unless_cancelled(where, backoff, failed)
            target = None if row is None else JobStatus(row[0])
            if row is not None:
                retry_at, now = as_datetime(row[1]), as_datetime(row[2])
            if target == STOP_CANCELLED.target:
                retry_at = None  # none was scheduled: the attempt says so
        else:
            target = BURY.target
            # One statement's time for both: statement_timestamp() does not move within it.
            row = apply_returning(BURY, where, ("last_failed_at",),
                                   finished_at=failed["last_failed_at"], **failed,
                                   **_LEASE_CLEARED)
            if row is not None:
                now = as_datetime(row[0])
                DeadLetter.objects.create(job_id=claimed.job.pk, attempt_id=claimed.attempt.pk,
                                          attempts=claimed.job.attempt_count, failed_at=now)
        if row is None:
            raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
        step_id = close_running_steps(claimed, error, now) or step_id
        close_attempt(claimed.attempt, attempt_status, now, error, retry_at=retry_at,
                       step_id=step_id)
        finished(claimed.job, claimed.attempt, target, error)
    return target


def _retry_unless_cancelled(where: Q, backoff: timedelta, failed: dict[str, Any],
                            ) -> tuple | None:
    """running -> retrying, or -> cancelled when a cancel is pending: one UPDATE, whose
    CASE reads `cancel_requested_at` from the row it writes. It returns the status it
    left, the run_after (the database's clock plus `backoff`) and the failure's time;
    None if the attempt no longer owns the job."""
    assert RETRY.sources == STOP_CANCELLED.sources  # one WHERE serves both
    cancel_pending = Q(cancel_requested_at__isnull=False)
    return update_returning(
        Job.objects.filter(where, status__in=list(RETRY.sources)),
        ("status", "run_after", "last_failed_at"),
        status=Case(When(cancel_pending, then=Value(STOP_CANCELLED.target.value)),
                    default=Value(RETRY.target.value)),
        run_after=Case(When(cancel_pending, then=F("run_after")),
                       default=database_now_plus(backoff)),
        finished_at=Case(When(cancel_pending, then=failed["last_failed_at"]),
                         default=F("finished_at")),
        **failed, **_LEASE_CLEARED,
    )


def stop_cancelled(claimed: Claimed, *, now: datetime | None = None) -> None:
    """running -> cancelled, when a running job honours a cancel request."""
    with database.atomic():
        row = apply_returning(STOP_CANCELLED, owned(claimed), ("finished_at",),
                               finished_at=database_now(now), **_LEASE_CLEARED)
        if row is None:
            raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
        now = as_datetime(row[0])
        error = ErrorInfo.from_exception(JobCancelled("cancelled at an operator's request"),
                                         with_traceback=False)
        close_attempt(claimed.attempt, AttemptStatus.CANCELLED, now, error)
        finished(claimed.job, claimed.attempt, STOP_CANCELLED.target, error)


def release(claimed: Claimed, *, now: datetime | None = None) -> None:
    """running -> queued, when a shutting-down worker gives a job back unfinished.

    The interrupted try does not count against max_attempts: the job did not fail.
    It is due again at once, by the database's clock.
    """
    with database.atomic():
        row = apply_returning(
            RELEASE, owned(claimed), ("run_after",), attempt_count=F("attempt_count") - 1,
            run_after=database_now(now), started_at=None, **_LEASE_CLEARED,
        )
        if row is None:
            raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
        now = as_datetime(row[0])
        error = ErrorInfo.from_exception(
            WorkerShutdown("the worker shut down before the job finished; released for "
                           "another worker"), with_traceback=False)
        close_attempt(claimed.attempt, AttemptStatus.INTERRUPTED, now, error)
        # The interrupted step did not fail: it runs again, first thing, on the next attempt.
        attempt_steps(claimed).filter(status=StepStatus.RUNNING).update(
            status=StepStatus.PENDING, started_at=None
        )
        finished(claimed.job, claimed.attempt, RELEASE.target, error)


def renew_lease(
    claimed: Claimed, *, lease_seconds: float, now: datetime | None = None
) -> tuple[bool, bool]:
    """Extend a running job's lease. Returns (still owned, cancel requested).

    Not a status change: it only proves the worker is alive. One statement:
    the renewal returns the cancel request with it. The lease runs from the
    database's clock (the statement's own time), as the reaper reads it.
    """
    params = {"id": Job._meta.pk.get_db_prep_value(claimed.job.pk, connection),
              "number": claimed.attempt.number}
    # The statement's own time on PostgreSQL; SQLite runs in-process: this clock is its.
    sql, clock = dialect.current().renew_statement(now, lease_seconds)
    row = statements.fetchone(sql, {**params, **clock})
    return (False, False) if row is None else (True, row[0] is not None)

