"""An operator's transitions: cancel, requeue, resume, and the resolving of dead letters.

Each acts on many jobs, in transactions of BULK_BATCH rows: the rows of a batch
are locked (`_lock`), the eligible ones moved by one conditional UPDATE, and the
rest reported as skipped (`BulkResult`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Q

from jobs import database, signals
from jobs.core.clock import database_now
from jobs.core.reservations import RELEASED
from jobs.core.transitions.errors import ErrorInfo
from jobs.core.transitions.machine import (
    CANCEL,
    REQUEUE,
    RESUME,
    BulkResult,
    Transition,
    apply,
    finished,
)
from jobs.exceptions import JobCancelled
from jobs.models import DeadLetter, Job, JobStatus, Step, StepStatus

S = JobStatus
BULK_BATCH = 500


def cancel(job_ids: Iterable[UUID | str], *, now: datetime | None = None) -> BulkResult:
    """queued | retrying -> cancelled; a running job is asked to stop instead."""
    now = database_now(now)
    result = BulkResult()
    for batch in _batches(job_ids):
        with database.atomic():
            locked = _lock(batch, CANCEL.sources | {S.RUNNING})
            queued = [pk for pk, status in locked if status in CANCEL.sources]
            running = [pk for pk, status in locked if status == S.RUNNING]
            apply(CANCEL, Q(pk__in=queued), finished_at=now, **RELEASED)
            Job.objects.filter(
                pk__in=running, status=S.RUNNING, cancel_requested_at__isnull=True
            ).update(cancel_requested_at=now)
            if queued and signals.job_finished.receivers:
                for job in Job.objects.filter(pk__in=queued).order_by("pk"):
                    finished(job, None, CANCEL.target, ErrorInfo.from_exception(
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
            apply(
                t, Q(pk__in=eligible),
                attempt_count=0, run_after=now, started_at=None, finished_at=None,
                result=None, last_error="", failure_cause="", cancel_requested_at=None,
                **RELEASED,
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

