"""Every status change of a job or of a step, and nothing else, lives here.

Each change is one conditional `UPDATE ... WHERE status IN (...)`: of two
processes racing for the same change, the database lets exactly one match.
The runner, the step runner, the reaper and the operations module call these
functions; nothing else writes `status`.

Changes that belong to one attempt (succeed, retry, bury, and every step
write) are also fenced by the attempt number, so a worker that lost its job
(reaped after its lease ran out, say) can change nothing any more: not the
job, not a step of the attempt that replaced it, not even a progress figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID

from django.db.models import (
    Case,
    Exists,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from jobs import conf, database, signals
from jobs.core import causes, statements
from jobs.core.clock import database_now, database_now_plus
from jobs.core.serialization import describe, storable_text
from jobs.core.tracebacks import task_traceback
from jobs.database import connection
from jobs.exceptions import (
    InvalidProgress,
    JobCancelled,
    LostOwnership,
    WorkerShutdown,
)
from jobs.models import (
    Attempt,
    AttemptStatus,
    DeadLetter,
    Job,
    JobStatus,
    QueuePause,
    Step,
    StepStatus,
)

S = JobStatus


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[JobStatus]
    target: JobStatus


CLAIM = Transition("claim", frozenset({S.QUEUED, S.RETRYING}), S.RUNNING)
SUCCEED = Transition("succeed", frozenset({S.RUNNING}), S.SUCCEEDED)
RETRY = Transition("retry", frozenset({S.RUNNING}), S.RETRYING)
BURY = Transition("bury", frozenset({S.RUNNING}), S.DEAD)
CANCEL = Transition("cancel", frozenset({S.QUEUED, S.RETRYING}), S.CANCELLED)
STOP_CANCELLED = Transition("stop_cancelled", frozenset({S.RUNNING}), S.CANCELLED)
RELEASE = Transition("release", frozenset({S.RUNNING}), S.QUEUED)
REQUEUE = Transition("requeue", frozenset({S.DEAD, S.CANCELLED}), S.QUEUED)
RESUME = Transition("resume", frozenset({S.DEAD, S.CANCELLED, S.RETRYING}), S.QUEUED)

TRANSITIONS: tuple[Transition, ...] = (
    CLAIM, SUCCEED, RETRY, BURY, CANCEL, STOP_CANCELLED, RELEASE, REQUEUE, RESUME,
)
# The state machine as (from, to) pairs; anything else is refused.
ALLOWED: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    (source, t.target) for t in TRANSITIONS for source in t.sources
)

BULK_BATCH = 500
LAST_ERROR_CHARS = 300  # Job.last_error's length


@dataclass(frozen=True)
class ErrorInfo:
    """An error as it will be stored: always storable, however hostile the exception.

    NULs and lone surrogates cannot reach the database, a message or traceback
    is cut to its limit with a marker, and an exception whose __str__ raises is
    named by a placeholder: a failure must never turn into "worker lost"
    because its own description could not be written.

    `error_class` is an importable path (`class_path`). `exception` is the error
    itself, never stored: `job_finished` carries it to receivers in this process
    (jobs.backends logs it with its traceback, as the framework's handler expects).
    """

    error_class: str
    message: str
    traceback: str = ""
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        js = conf.get()
        object.__setattr__(self, "error_class", storable_text(self.error_class, 255))
        object.__setattr__(self, "message", storable_text(self.message, js.max_error_chars))
        object.__setattr__(self, "traceback",
                           storable_text(self.traceback, js.max_traceback_chars))

    @classmethod
    def from_exception(cls, exc: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
        """`exc` as stored; without its traceback for an error the engine made up to
        say what happened (a lost worker has no stack to show)."""
        return cls(error_class=class_path(type(exc)), message=describe(exc),
                   traceback=task_traceback(exc) if with_traceback else "", exception=exc)

    @property
    def summary(self) -> str:
        return f"{self.error_class}: {self.message}" if self.message else self.error_class

    @property
    def preview(self) -> str:
        """The summary on one line, short enough for a list (Job.last_error)."""
        return storable_text(" ".join(self.summary.split()), LAST_ERROR_CHARS)


def class_path(kind: type[BaseException]) -> str:
    """Where `kind` is imported from: a builtin by its bare name ("ValueError"), anything
    else by its dotted path. Engine errors live in jobs.exceptions, so every path the
    engine records imports (a task's own class imports if its module defines it at
    module level)."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass
class Claimed:
    """A job this worker now owns, and the attempt that records the try."""

    job: Job
    attempt: Attempt


@dataclass
class BulkResult:
    """What an operator action did, and what it refused and why."""

    done: list[UUID] = field(default_factory=list)
    skipped: list[UUID] = field(default_factory=list)
    # Running jobs asked to stop (cancel only): they end at their next safe point.
    requested: list[UUID] = field(default_factory=list)


def _apply(t: Transition, where: Q, **fields: Any) -> int:
    """The single place that writes `status`."""
    return Job.objects.filter(where, status__in=list(t.sources)).update(status=t.target, **fields)


def _apply_returning(t: Transition, where: Q, returning: tuple[str, ...], **fields: Any
                     ) -> tuple | None:
    """`_apply`, and the row's `returning` fields as the UPDATE wrote them (times the
    database's clock chose, say); None if nothing matched."""
    return _update_returning(Job.objects.filter(where, status__in=list(t.sources)), returning,
                             status=t.target, **fields)


def _update_returning(queryset: Any, returning: tuple[str, ...], **fields: Any) -> tuple | None:
    """`queryset.update(**fields)` as one `UPDATE ... RETURNING` of the first row it
    changed (the callers change one row): Django's update returns only a count."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(fields)
    sql, params = query.get_compiler(queryset.db).as_sql()
    meta = queryset.model._meta
    columns = ", ".join(connection.ops.quote_name(meta.get_field(name).column)
                        for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {columns}", params)
        return cursor.fetchone()


def _owned(claimed: Claimed) -> Q:
    return Q(pk=claimed.job.pk, last_attempt_number=claimed.attempt.number)


def _attempt_steps(claimed: Claimed) -> Any:
    return Step.objects.filter(job_id=claimed.job.pk, attempt_number=claimed.attempt.number)


_LEASE_CLEARED = {"lease_owner": "", "lease_expires_at": None}


def _finished(job: Job, attempt: Attempt | None, status: JobStatus,
              error: ErrorInfo | None = None) -> None:
    """Send `job_finished` for a change this module just wrote, once it is committed.

    The one place it is sent: every end of an attempt (succeed, fail, stop_cancelled,
    release) and every other way into a final status (cancel of a job that was not
    running) goes through here, whichever process wrote it (a worker, the reaper, an
    operator). At once in autocommit, else at the commit of the caller's transaction
    (the task's own, for an atomic task's success), so no receiver hears of a change
    that was rolled back. A worker writes a failure inside the `except` block that
    caught it, so the error is still the current exception when receivers run.
    """
    if not signals.job_finished.receivers:
        return
    exception = error.exception if error is not None else None
    database.on_commit(lambda: signals.send(signals.job_finished, Job, job=job,
                                            attempt=attempt, status=status, error=exception))


# --- The clock that decides: jobs.core.clock -----------------------------------------
# The functions below still take `now=`: a caller (a test, a replay) that passes a
# time gets exactly that time; without one the database's clock decides.


def _datetime(value: Any) -> datetime:
    """A timestamp as a RETURNING gives it back: aware already (psycopg), or
    SQLite's stored text (UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# A statement's own time on PostgreSQL, or the caller's (tests) when it passed one.
_STATEMENT_NOW = "COALESCE(%(now)s::timestamptz, statement_timestamp())"


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
    if connection.vendor == "postgresql":
        return _claim_in_one_statement(job_id, worker_host, worker_pid, owner, lease_seconds,
                                       now, ids)
    now = now or timezone.now()  # SQLite runs in-process: this clock is the database's
    lease = now + timedelta(seconds=lease_seconds)
    return _claim_in_one_transaction(job_id, worker_host, worker_pid, owner, lease, now, ids)


# Table names from the models, as everywhere else (a project may not keep the defaults).
_JOB, _ATTEMPT = Job._meta.db_table, Attempt._meta.db_table
_PAUSE = QueuePause._meta.db_table  # a paused queue's jobs are not claimed (jobs.core.queues)

# {now} and {lease}: on PostgreSQL the statement's own time (the database's clock)
# and that plus the lease; on SQLite parameters from this process's clock (its own).
_CLAIM_JOB_SQL = f"""
UPDATE {_JOB} SET status = '{CLAIM.target.value}',
    attempt_count = attempt_count + 1, last_attempt_number = last_attempt_number + 1,
    started_at = {{now}}, finished_at = NULL, reserved_until = NULL,
    lease_owner = %(owner)s, lease_expires_at = {{lease}}, heartbeat_at = {{now}}
WHERE id = %(id)s AND status IN ({", ".join(f"'{s.value}'" for s in sorted(CLAIM.sources))})
  AND run_after <= {{now}}
  AND NOT EXISTS (SELECT 1 FROM {_PAUSE} WHERE {_PAUSE}.queue = {_JOB}.queue)
RETURNING {{columns}}
"""
_PYTHON_CLOCK = {"now": "%(now)s", "lease": "%(lease)s"}
_OPEN_ATTEMPT_SQL = f"""
INSERT INTO {_ATTEMPT} (job_id, number, status, started_at, worker_host, worker_pid,
                        worker_id, worker_cluster, error_class, error_message, traceback)
VALUES (%(id)s, %(number)s, '{AttemptStatus.RUNNING.value}', %(now)s, %(host)s, %(pid)s,
        %(worker_id)s, %(worker_cluster)s, '', '', '')
RETURNING id
"""


# On PostgreSQL both in one statement: the attempt is opened for the row the UPDATE
# returns, so no attempt without its claim, and one round trip.
# The attempt starts when the job did: at the started_at the UPDATE wrote.
_CLAIM_SQL = f"""
WITH {{asynchronous}}claimed AS ({_CLAIM_JOB_SQL.format(
    now=_STATEMENT_NOW, lease=f"{_STATEMENT_NOW} + %(lease)s::interval", columns="{columns}")}),
attempt AS (
    INSERT INTO {_ATTEMPT} (job_id, number, status, started_at, worker_host, worker_pid,
                              worker_id, worker_cluster, error_class, error_message, traceback)
    SELECT id, last_attempt_number, '{AttemptStatus.RUNNING.value}', started_at, %(host)s,
           %(pid)s, %(worker_id)s, %(worker_cluster)s, '', '', ''
    FROM claimed
    RETURNING id AS attempt_id
)
SELECT claimed.*, attempt.attempt_id FROM claimed, attempt{{asynchronous_from}}
"""
# Referenced in FROM, so it is evaluated; it holds for this statement's transaction.
_ASYNCHRONOUS_COMMIT = "asynchronous AS (SELECT set_config('synchronous_commit', 'off', true)), "


@cache
def _claim_sql(autocommit: bool) -> str:
    # Inside a caller's transaction the setting would cover the caller's writes too.
    return _CLAIM_SQL.format(
        columns=statements.columns(Job),
        asynchronous=_ASYNCHRONOUS_COMMIT if autocommit else "",
        asynchronous_from=", asynchronous" if autocommit else "",
    )


def _claim_in_one_transaction(job_id: UUID | str, host: str, pid: int, owner: str,
                              lease: datetime, now: datetime,
                              ids: tuple[UUID | None, UUID | None]) -> Claimed | None:
    """Elsewhere (SQLite): the same two writes in one short transaction, in plain SQL
    (building them with the ORM cost more than running them)."""
    params = {"id": _prep(Job, "id", UUID(str(job_id))), "now": _prep(Job, "started_at", now),
              "lease": _prep(Job, "lease_expires_at", lease), "owner": owner}
    with database.atomic(savepoint=False):
        row = statements.fetchone(
            _CLAIM_JOB_SQL.format(columns=statements.columns(Job), **_PYTHON_CLOCK), params)
        if row is None:
            return None
        job = statements.instance(Job, row)
        (attempt_id,) = statements.fetchone(_OPEN_ATTEMPT_SQL, {
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
    row = statements.fetchone(_claim_sql(database.get_autocommit()), params)
    if row is None:
        return None
    return _claimed(statements.instance(Job, row), row[-1], host, pid, ids)


def succeed(claimed: Claimed, result: Any, *, now: datetime | None = None) -> None:
    """running -> succeeded, job and attempt together. Call inside the task's transaction
    when it is atomic. On PostgreSQL it is one statement, with no savepoint around it,
    and the finish is the database's clock (the statement's own time), returned by it."""
    if connection.vendor == "postgresql":
        params = _succeed_params(claimed, result, now)
        job_moved, attempt_closed, now = statements.fetchone(_SUCCEED_SQL, params)
    else:
        now = now or timezone.now()  # SQLite runs in-process: this clock is the database's
        params = _succeed_params(claimed, result, now)
        # Inside the task's transaction no savepoint: a refusal rolls the task back.
        with database.atomic(savepoint=False):
            job_moved = statements.fetchone(_SUCCEED_JOB_SQL, params) is not None
            attempt_closed = job_moved and bool(statements.fetchone(_SUCCEED_ATTEMPT_SQL, params))
    if not job_moved:
        raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
    if attempt_closed:
        _closed(claimed.attempt, {"status": AttemptStatus.SUCCEEDED, "finished_at": now,
                                  "duration": now - claimed.attempt.started_at,
                                  "retry_at": None})
    _finished(claimed.job, claimed.attempt, SUCCEED.target)


# {now} and {duration}: as in the claim, the statement's own time on PostgreSQL,
# parameters from this process's clock on SQLite.
_SUCCEED_JOB_SQL = f"""
UPDATE {_JOB} SET status = '{SUCCEED.target.value}', result = %(result)s,
    finished_at = {{now}}, last_error = '', lease_owner = '', lease_expires_at = NULL
WHERE id = %(id)s AND status = '{S.RUNNING.value}' AND last_attempt_number = %(number)s
RETURNING id
"""
_SUCCEED_ATTEMPT_SQL = f"""
UPDATE {_ATTEMPT} SET status = '{AttemptStatus.SUCCEEDED.value}', finished_at = {{now}},
    duration = {{duration}}, retry_at = NULL
WHERE id = %(attempt)s AND status = '{AttemptStatus.RUNNING.value}'{{only_if_job_moved}}
RETURNING id
"""
# On PostgreSQL one statement; the attempt is closed only if the job moved.
_SUCCEED_SQL = f"""
WITH job AS ({_SUCCEED_JOB_SQL.format(now=_STATEMENT_NOW)}), attempt AS ({
    _SUCCEED_ATTEMPT_SQL.format(now=_STATEMENT_NOW,
                                duration=f"{_STATEMENT_NOW} - started_at",
                                only_if_job_moved=" AND EXISTS (SELECT 1 FROM job)")})
SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM attempt), {_STATEMENT_NOW}
"""
_SUCCEED_JOB_SQL = _SUCCEED_JOB_SQL.format(now="%(now)s")
_SUCCEED_ATTEMPT_SQL = _SUCCEED_ATTEMPT_SQL.format(now="%(now)s", duration="%(duration)s",
                                                  only_if_job_moved="")


def _succeed_params(claimed: Claimed, result: Any, now: datetime | None) -> dict[str, Any]:
    params = {
        "id": _prep(Job, "id", claimed.job.pk), "number": claimed.attempt.number,
        "attempt": claimed.attempt.pk,
        "result": Job._meta.get_field("result").get_db_prep_save(result, connection),
        "now": _prep(Job, "finished_at", now),
    }
    if now is not None and connection.vendor != "postgresql":
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
    where = _owned(claimed) & (guard or Q())
    with database.atomic():
        failed = {"last_error": error.preview, "last_failed_at": database_now(now),
                  "failure_cause": causes.cause(error.error_class, error.message)}
        if backoff is not None:
            row = _retry_unless_cancelled(where, backoff, failed)
            target = None if row is None else JobStatus(row[0])
            if row is not None:
                retry_at, now = _datetime(row[1]), _datetime(row[2])
            if target == STOP_CANCELLED.target:
                retry_at = None  # none was scheduled: the attempt says so
        else:
            target = BURY.target
            # One statement's time for both: statement_timestamp() does not move within it.
            row = _apply_returning(BURY, where, ("last_failed_at",),
                                   finished_at=failed["last_failed_at"], **failed,
                                   **_LEASE_CLEARED)
            if row is not None:
                now = _datetime(row[0])
                DeadLetter.objects.create(job_id=claimed.job.pk, attempt_id=claimed.attempt.pk,
                                          attempts=claimed.job.attempt_count, failed_at=now)
        if row is None:
            raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
        step_id = _close_running_steps(claimed, error, now) or step_id
        _close_attempt(claimed.attempt, attempt_status, now, error, retry_at=retry_at,
                       step_id=step_id)
        _finished(claimed.job, claimed.attempt, target, error)
    return target


def _retry_unless_cancelled(where: Q, backoff: timedelta, failed: dict[str, Any],
                            ) -> tuple | None:
    """running -> retrying, or -> cancelled when a cancel is pending: one UPDATE, whose
    CASE reads `cancel_requested_at` from the row it writes. It returns the status it
    left, the run_after (the database's clock plus `backoff`) and the failure's time;
    None if the attempt no longer owns the job."""
    assert RETRY.sources == STOP_CANCELLED.sources  # one WHERE serves both
    cancel_pending = Q(cancel_requested_at__isnull=False)
    return _update_returning(
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
        row = _apply_returning(STOP_CANCELLED, _owned(claimed), ("finished_at",),
                               finished_at=database_now(now), **_LEASE_CLEARED)
        if row is None:
            raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
        now = _datetime(row[0])
        error = ErrorInfo.from_exception(JobCancelled("cancelled at an operator's request"),
                                         with_traceback=False)
        _close_attempt(claimed.attempt, AttemptStatus.CANCELLED, now, error)
        _finished(claimed.job, claimed.attempt, STOP_CANCELLED.target, error)


def release(claimed: Claimed, *, now: datetime | None = None) -> None:
    """running -> queued, when a shutting-down worker gives a job back unfinished.

    The interrupted try does not count against max_attempts: the job did not fail.
    It is due again at once, by the database's clock.
    """
    with database.atomic():
        row = _apply_returning(
            RELEASE, _owned(claimed), ("run_after",), attempt_count=F("attempt_count") - 1,
            run_after=database_now(now), started_at=None, **_LEASE_CLEARED,
        )
        if row is None:
            raise LostOwnership(f"job {claimed.job.pk} is no longer owned by this attempt")
        now = _datetime(row[0])
        error = ErrorInfo.from_exception(
            WorkerShutdown("the worker shut down before the job finished; released for "
                           "another worker"), with_traceback=False)
        _close_attempt(claimed.attempt, AttemptStatus.INTERRUPTED, now, error)
        # The interrupted step did not fail: it runs again, first thing, on the next attempt.
        _attempt_steps(claimed).filter(status=StepStatus.RUNNING).update(
            status=StepStatus.PENDING, started_at=None
        )
        _finished(claimed.job, claimed.attempt, RELEASE.target, error)


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
    if connection.vendor == "postgresql":
        sql = _RENEW_BY_STATEMENT_TIME
        params.update(now=now, lease=timedelta(seconds=lease_seconds))
    else:  # SQLite runs in-process: this clock is the database's
        now = now or timezone.now()
        adapt = connection.ops.adapt_datetimefield_value
        sql = _RENEW_SQL.format(now="%(now)s", lease="%(lease)s")
        params.update(now=adapt(now), lease=adapt(now + timedelta(seconds=lease_seconds)))
    row = statements.fetchone(sql, params)
    return (False, False) if row is None else (True, row[0] is not None)


_RENEW_SQL = (
    f"UPDATE {_JOB} SET lease_expires_at = {{lease}}, heartbeat_at = {{now}}"
    f" WHERE id = %(id)s AND status = '{S.RUNNING.value}' AND last_attempt_number = %(number)s"
    " RETURNING cancel_requested_at"
)
_RENEW_BY_STATEMENT_TIME = _RENEW_SQL.format(now=_STATEMENT_NOW,
                                             lease=f"{_STATEMENT_NOW} + %(lease)s::interval")


def clear_reservation(job_id: UUID | str) -> None:
    """Give a reserved-but-unclaimed job back to every cluster at once (draining worker)."""
    Job.objects.filter(pk=job_id, status__in=list(CLAIM.sources)).update(reserved_until=None)


def cancel(job_ids: Iterable[UUID | str], *, now: datetime | None = None) -> BulkResult:
    """queued | retrying -> cancelled; a running job is asked to stop instead."""
    now = database_now(now)
    result = BulkResult()
    for batch in _batches(job_ids):
        with database.atomic():
            locked = _lock(batch, CANCEL.sources | {S.RUNNING})
            queued = [pk for pk, status in locked if status in CANCEL.sources]
            running = [pk for pk, status in locked if status == S.RUNNING]
            _apply(CANCEL, Q(pk__in=queued), finished_at=now, reserved_until=None)
            Job.objects.filter(
                pk__in=running, status=S.RUNNING, cancel_requested_at__isnull=True
            ).update(cancel_requested_at=now)
            if queued and signals.job_finished.receivers:
                for job in Job.objects.filter(pk__in=queued).order_by("pk"):
                    _finished(job, None, CANCEL.target, ErrorInfo.from_exception(
                        JobCancelled("cancelled at an operator's request before it ran"),
                        with_traceback=False))
        result.done += queued
        result.requested += running
        result.skipped += _rest(batch, queued + running)
    return result


def requeue(
    job_ids: Iterable[UUID | str],
    *,
    by: Any = None,
    note: str = "requeued",
    now: datetime | None = None,
) -> BulkResult:
    """dead | cancelled -> queued, from scratch: a fresh attempt cycle, every step
    pending again. Attempts and dead letters stay as history."""
    return _restart(REQUEUE, job_ids, by=by, note=note, now=now, keep_steps=False)


def resume(
    job_ids: Iterable[UUID | str],
    *,
    by: Any = None,
    note: str = "resumed",
    now: datetime | None = None,
) -> BulkResult:
    """dead | cancelled | retrying -> queued, keeping every succeeded step's result:
    the job reruns from its first step that did not succeed, each with a fresh
    step attempt budget (and whatever limits an operator raised)."""
    return _restart(RESUME, job_ids, by=by, note=note, now=now, keep_steps=True)


def _restart(
    t: Transition, job_ids: Iterable[UUID | str], *, by: Any, note: str,
    now: datetime | None, keep_steps: bool,
) -> BulkResult:
    # Due again at once by the database's clock, which decides the claim (not this host's).
    now = database_now(now)
    result = BulkResult()
    for batch in _batches(job_ids):
        with database.atomic():
            eligible = [pk for pk, _ in _lock(batch, t.sources)]
            _apply(
                t, Q(pk__in=eligible),
                attempt_count=0, run_after=now, started_at=None, finished_at=None,
                result=None, last_error="", failure_cause="", cancel_requested_at=None,
                reserved_until=None,
            )
            steps = Step.objects.filter(job_id__in=eligible)
            if keep_steps:
                steps = steps.exclude(status=StepStatus.SUCCEEDED)
            steps.update(
                status=StepStatus.PENDING, attempts=0, attempt_number=None,
                started_at=None, finished_at=None,
                progress_current=None, progress_total=None, progress_message="",
                **({} if keep_steps else {"result": None}),
            )
            _resolve_open(Q(job_id__in=eligible), by=by, note=note, now=now)
        result.done += eligible
        result.skipped += _rest(batch, eligible)
    return result


def resolve_dead_letters(
    dead_letter_ids: Iterable[int], *, by: Any = None, note: str = "", now: datetime | None = None
) -> int:
    """Mark dead letters handled (who, when, why); the jobs themselves stay dead."""
    return _resolve_open(Q(pk__in=list(dead_letter_ids)), by=by, note=note, now=now)


def _resolve_open(where: Q, *, by: Any, note: str, now: Any) -> int:
    return DeadLetter.objects.filter(where, resolved_at__isnull=True).update(
        resolved_at=database_now() if now is None else now,
        resolved_by=by if getattr(by, "pk", None) else None,
        note=note,
    )


def _close_running_steps(claimed: Claimed, error: ErrorInfo, now: datetime) -> int | None:
    """A step this attempt left `running` when it ended (the worker died in it) failed."""
    running = list(_attempt_steps(claimed).filter(status=StepStatus.RUNNING)
                   .values_list("pk", flat=True))
    if running:
        Step.objects.filter(pk__in=running, status=StepStatus.RUNNING).update(
            status=StepStatus.FAILED, finished_at=now, error_class=error.error_class,
            error_message=error.message, traceback=error.traceback,
        )
    return running[0] if running else None


def _close_attempt(
    attempt: Attempt,
    status: AttemptStatus,
    now: datetime,
    error: ErrorInfo | None = None,
    retry_at: datetime | None = None,
    step_id: int | None = None,
) -> None:
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "duration": now - attempt.started_at,
        "retry_at": retry_at,
    }
    if step_id is not None:
        fields["step_id"] = step_id
    if error is not None:
        fields.update(
            error_class=error.error_class,
            error_message=error.message,
            traceback=error.traceback,
        )
    Attempt.objects.filter(pk=attempt.pk, status=AttemptStatus.RUNNING).update(**fields)
    _closed(attempt, fields)


def _closed(attempt: Attempt, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(attempt, name, value)


def _lock(batch: list[UUID | str], statuses: Iterable[JobStatus]) -> list[tuple[UUID, str]]:
    """Rows of the batch in the given statuses, locked until the transaction ends."""
    return list(
        Job.objects.select_for_update()
        .filter(pk__in=batch, status__in=list(statuses))
        .order_by("pk")
        .values_list("pk", "status")
    )


def _batches(job_ids: Iterable[UUID | str]) -> Iterable[list[UUID | str]]:
    batch: list[UUID | str] = []
    for pk in job_ids:
        batch.append(pk)
        if len(batch) >= BULK_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _rest(batch: list[UUID | str], taken: list[UUID]) -> list[UUID]:
    taken_set = {UUID(str(pk)) for pk in taken}
    return [UUID(str(pk)) for pk in batch if UUID(str(pk)) not in taken_set]


def resolve_dead_letters_of_jobs(
    job_ids: Iterable[UUID | str], *, by: Any = None, note: str = "", now: datetime | None = None
) -> BulkResult:
    """Resolve the open dead letter of each job (the dashboard acts on jobs, not letters)."""
    ids = [UUID(str(pk)) for pk in job_ids]
    open_for = set(
        DeadLetter.objects.filter(job_id__in=ids, resolved_at__isnull=True)
        .values_list("job_id", flat=True)
    )
    _resolve_open(Q(job_id__in=list(open_for)), by=by, note=note, now=now)
    return BulkResult(done=[pk for pk in ids if pk in open_for],
                      skipped=[pk for pk in ids if pk not in open_for])


# --- Steps -------------------------------------------------------------------------
#
# A step's writes are fenced twice: by the job (still `running`, still owned by
# this attempt) when the step starts, and by the step row's own attempt_number
# (set by that start) for every write after it. A reaped attempt's start
# matches no job row; its later writes match no step row, because the reaper
# closed the step, or the next attempt restarted it under its own number.


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
