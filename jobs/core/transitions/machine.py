"""The state machine, and the one place that writes a job's `status`.

What every transition module shares: the transitions themselves (from which
statuses to which), the guarded UPDATE (`apply`), the fences of an attempt
(`owned`, `attempt_steps`), the closing of an attempt, and `finished`, which
sends `job_finished` once a change is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db.models import Q
from django.db.models.sql import UpdateQuery

from jobs import database, signals
from jobs.core.transitions.errors import ErrorInfo
from jobs.database import connection
from jobs.dialect.base import CLAIMABLE
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, Step, StepStatus

S = JobStatus


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[JobStatus]
    target: JobStatus


CLAIM = Transition("claim", CLAIMABLE, S.RUNNING)
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


def apply(t: Transition, where: Q, **fields: Any) -> int:
    """The single place that writes `status`."""
    return Job.objects.filter(where, status__in=list(t.sources)).update(status=t.target, **fields)


def apply_returning(t: Transition, where: Q, returning: tuple[str, ...], **fields: Any
                    ) -> tuple | None:
    """`apply`, and the row's `returning` fields as the UPDATE wrote them (times the
    database's clock chose, say); None if nothing matched."""
    return update_returning(Job.objects.filter(where, status__in=list(t.sources)), returning,
                            status=t.target, **fields)


def update_returning(queryset: Any, returning: tuple[str, ...], **fields: Any) -> tuple | None:
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


def owned(claimed: Claimed) -> Q:
    return Q(pk=claimed.job.pk, last_attempt_number=claimed.attempt.number)


def attempt_steps(claimed: Claimed) -> Any:
    return Step.objects.filter(job_id=claimed.job.pk, attempt_number=claimed.attempt.number)


LEASE_CLEARED = {"lease_owner": "", "lease_expires_at": None}


def finished(job: Job, attempt: Attempt | None, status: JobStatus,
             error: ErrorInfo | None = None) -> None:
    """Send `job_finished` for a change this package just wrote, once it is committed.

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


def as_datetime(value: Any) -> datetime:
    """A timestamp as a RETURNING gives it back: aware already (psycopg), or
    SQLite's stored text (UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def close_running_steps(claimed: Claimed, error: ErrorInfo, now: datetime) -> int | None:
    """A step this attempt left `running` when it ended (the worker died in it) failed."""
    running = list(attempt_steps(claimed).filter(status=StepStatus.RUNNING)
                   .values_list("pk", flat=True))
    if running:
        Step.objects.filter(pk__in=running, status=StepStatus.RUNNING).update(
            status=StepStatus.FAILED, finished_at=now, error_class=error.error_class,
            error_message=error.message, traceback=error.traceback,
        )
    return running[0] if running else None


def close_attempt(
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
    closed(attempt, fields)


def closed(attempt: Attempt, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(attempt, name, value)
