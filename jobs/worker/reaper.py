"""The orphan reaper: settles running jobs whose worker stopped heartbeating.

A worker killed by OOM, `kill -9`, a deploy or a lost host cannot write its
own outcome. Its lease can: once the lease lapses, the reaper closes the open
attempt as `lost` and retries the job with backoff, or dead-letters it when it
is out of attempts. The lease decides, never the age of the row, so a long
job whose worker keeps heartbeating is never touched.

Every cluster runs `sweep` from its maintenance thread, and `manage.py
reap_orphans` runs it by hand; several at once are safe, because each change
is the guarded UPDATE in `jobs.core.transitions.fail`, which also requires the
lease to still be expired at that moment. Once an attempt is settled as lost,
the transactions its worker began before the lease lapsed are ended on the
server (`jobs.worker.sessions`): a worker cut off mid-transaction cannot keep
the re-run waiting on its locks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from jobs import conf
from jobs.core import retry, transitions
from jobs.core.clock import database_now
from jobs.core.registry import get_task
from jobs.core.retry import Backoff
from jobs.core.transitions import Claimed, ErrorInfo
from jobs.exceptions import LostOwnership, UnknownTaskError, WorkerLost
from jobs.models import Attempt, AttemptStatus, Job, JobStatus
from jobs.worker import sessions

logger = logging.getLogger("jobs.reaper")


@dataclass
class SweepResult:
    retried: list[UUID] = field(default_factory=list)
    dead: list[UUID] = field(default_factory=list)
    # Lost while an operator's cancel was pending: cancelled, not run again.
    cancelled: list[UUID] = field(default_factory=list)


def sweep(*, now: datetime | None = None, limit: int = 500) -> SweepResult:
    """Settle up to `limit` running jobs whose lease expired before `now`: by default
    the database's clock, the one the leases were written with, so a reaper whose
    own clock runs ahead takes nothing from a live worker."""
    result = SweepResult()
    expired = (
        Job.objects.filter(status=JobStatus.RUNNING,
                           lease_expires_at__lt=database_now(now))
        .order_by("lease_expires_at")[:limit]
    )
    for job in expired:
        status = reap(job, now=now)
        if status == JobStatus.RETRYING:
            result.retried.append(job.pk)
        elif status == JobStatus.DEAD:
            result.dead.append(job.pk)
        elif status == JobStatus.CANCELLED:
            result.cancelled.append(job.pk)
    return result


def reap(job: Job, *, now: datetime | None = None) -> JobStatus | None:
    """Close the job's open attempt as lost and retry or bury it; None if someone else did.

    A job whose cancel was pending when its worker was lost is cancelled instead
    of retried (`transitions.fail`): the operator's request is not lost with it.

    Without `now` the database's clock decides, in the UPDATE itself: the lease must
    still be expired at that statement's time, and the retry is due at that time plus
    the backoff (`transitions.fail`). This host's clock only measures the backoff.
    """
    attempt = Attempt.objects.filter(job_id=job.pk, number=job.last_attempt_number).first()
    if attempt is None:  # claim writes both in one transaction; nothing to close
        return None
    try:
        backoff = get_task(job.task_name).effective_backoff()
    except UnknownTaskError:
        backoff = Backoff.from_settings()
    measured_from = now or timezone.now()
    when = retry.retry_at(
        attempt_count=job.attempt_count, max_attempts=job.max_attempts,
        backoff=backoff, permanent=False, now=measured_from,
    )
    last_beat = job.heartbeat_at or (
        job.lease_expires_at - timedelta(seconds=conf.get().lease_seconds)
    )
    error = ErrorInfo.from_exception(WorkerLost(
        f"worker {job.lease_owner or 'unknown'} stopped heartbeating at "
        f"{last_beat.isoformat(timespec='seconds')}; lease expired at "
        f"{job.lease_expires_at.isoformat(timespec='seconds')}",
    ), with_traceback=False)
    try:
        status = transitions.fail(
            Claimed(job=job, attempt=attempt), error, retry_at=when,
            attempt_status=AttemptStatus.LOST, now=now,
            guard=Q(lease_expires_at__lt=database_now(now)),
        )
    except LostOwnership:
        return None  # a late heartbeat, the worker itself, or another reaper won
    logger.warning("reaped job %s (%s): %s -> %s", job.pk, job.task_name, error.message, status)
    # Settled: what the lost attempt still holds open (once() keys, rows) would only
    # keep the re-run waiting, however long the worker stays cut off.
    if ended := sessions.end_lapsed_transactions(attempt.worker_id, job.lease_expires_at):
        logger.warning("ended %s open transaction(s) of worker %s, begun before its lease on "
                       "job %s lapsed: their locks are released", ended,
                       job.lease_owner or attempt.worker_id, job.pk)
    return status
