"""An action on every job that matches a filter, however many: run by a job of its own.

`start` checks the permission, writes the audit row (status running), fixes
the set of jobs it will act on and enqueues `jobs.bulk_action`, in one
transaction, so there is never an operation without its job or a job without
its row. The set is fixed once (`OperationTarget` rows, one INSERT ... SELECT):
in the request when the matches are few enough to count there, else first
thing in the job. So the operation acts on every job matching the filter when
it was asked for, and on nothing that began to match later; `matched` is the
size of that set, and when it ends done + skipped (by reason) == matched.

The job walks the set in id order, a batch at a time; each batch's
transitions and the progress they made (counts, the last id) commit
together, so a worker killed mid-run leaves the counts true and the retry
continues after the last committed batch. Between batches it checks whether
its own job was asked to stop: then the row says cancelled, with the counts
of the committed batches, and the job ends cancelled.

An operation ends on every end of its job (`settle`): succeeded (done), dead
after its last attempt (failed, with why: the error, a timeout, a lost
worker), cancelled, or its job gone. The `job_finished` signal settles it at
once (connected in `jobs.apps`), in whichever process ended the job (a worker,
the reaper, an operator's cancel); an end this process did not hear of (the
signal's receiver failed, the process died after the commit) is settled when
the operation is next read (`report`, which every screen uses).
Every status write is one UPDATE ... WHERE status = 'running', so of two
processes settling the same operation exactly one wins.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from jobs import conf, database
from jobs.core.context import JobCancelled, current_job
from jobs.core.enqueue import enqueue
from jobs.database import connection
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, OperationStatus, OperatorAction
from jobs.models.console import OperationTarget
from jobs.ops import audit, operations, search
from jobs.ops.lookups import CappedCount, capped_count

TASK = search.OPERATION_TASK  # hidden from job lists (search.ENGINE_TASKS)
BATCH = 500
RUNNING = OperationStatus.RUNNING
WORKER_LOST = "the worker carrying it out was lost"
TIMED_OUT = "it timed out"
JOB_GONE = "its job no longer exists"


def start(name: str, user: Any, filters: dict[str, Any], *, note: str = "") -> OperatorAction:
    """Start action `name` on every job matching `filters` (cleaned values) for `user`."""
    action = operations.ACTIONS[name]
    if not action.allowed(user):
        raise PermissionDenied(f"{user} may not {action.name} jobs ({action.permission})")
    now = timezone.now()
    stored = search.freeze(filters, now)
    with database.atomic():
        row = audit.record(name, user, {"filter": stored}, note=note, status=RUNNING)
        targets = _targets(search.thaw(stored))
        # Past the request's cap, run() fixes the set instead (an INSERT of millions of
        # ids has no place in a request).
        if not capped_count(targets).capped:
            row.matched = _fix_targets(row.pk, targets)
        # The default queue (JOBS['DEFAULT_QUEUE']), which the project's clusters serve.
        job = enqueue(TASK, row.pk, max_attempts=5, queue=conf.get().default_queue)
        row.job = job
        row.save(update_fields=["matched", "job"])
    return row


def run(operation_id: int) -> dict[str, Any]:
    """The body of jobs.bulk_action: finish the operation, from where it stood.

    Raises JobCancelled (after writing the row cancelled) when its job was asked
    to stop, so the job ends cancelled too.
    """
    row = OperatorAction.objects.select_related("user").get(pk=operation_id)
    if row.status != RUNNING:
        return _counts(row)  # a second run changes nothing
    action = operations.ACTIONS[row.action]
    options = {"note": row.note} if row.note and action.name == "resolve" else {}
    # Past the request's cap the set is fixed here, once; so is that of an operation
    # started by a version that fixed no set (it has no target rows and no progress).
    unfixed = row.matched is None or (
        row.matched and not row.cursor
        and not OperationTarget.objects.filter(operation_id=row.pk).exists())
    if unfixed:
        with database.atomic():
            fixed = _fix_targets(row.pk, _targets(search.thaw(row.target["filter"])))
            OperatorAction.objects.filter(pk=row.pk, cursor=row.cursor).update(matched=fixed)
        row.matched = fixed
    cursor = row.cursor
    while True:
        _stop_if_asked(row)
        ids = _next_batch(row.pk, cursor)
        if not ids:
            break
        with database.atomic():
            result = action.run(ids, row.user, **options)
            reasons = dict(row.skipped_reasons)
            for why, n in operations.skip_reasons(action, result).items():
                reasons[why] = reasons.get(why, 0) + n
            # Only from the position this run read: a reaped attempt that wakes up
            # cannot count a batch its successor already counted.
            moved = OperatorAction.objects.filter(pk=row.pk, status=RUNNING,
                                                  cursor=cursor).update(
                done=F("done") + len(result.done),
                skipped=F("skipped") + len(result.skipped) + len(result.requested),
                skipped_reasons=reasons, cursor=str(ids[-1]))
            if not moved:
                # Settled meanwhile, or another attempt moved on: this batch's changes
                # would be counted nowhere, so they are undone with it.
                database.set_rollback(True)
        if not moved:
            row.refresh_from_db()
            return _counts(row)
        cursor = str(ids[-1])
        row.skipped_reasons = reasons
    with database.atomic():
        if OperatorAction.objects.filter(pk=row.pk, status=RUNNING).update(
                status=OperationStatus.DONE, finished_at=timezone.now()):
            OperationTarget.objects.filter(operation_id=row.pk).delete()  # served its purpose
    row.refresh_from_db()
    return _counts(row)


def _counts(row: OperatorAction) -> dict[str, Any]:
    return {"done": row.done, "skipped": row.skipped}


def _targets(filters: dict[str, Any]) -> Any:
    """The matching jobs, never an operation's own job (cancel all running, say)."""
    return search.matching(filters).exclude(task_name=TASK)


def count_matching(filters: dict[str, Any]) -> CappedCount:
    """How many jobs an operation on `filters` would act on now, as a confirmation
    names them (capped, like every count on a page)."""
    return capped_count(_targets(filters))


def _fix_targets(operation_id: int, targets: Any) -> int:
    """Write the ids of `targets` as the operation's set, in one INSERT ... SELECT;
    returns how many. Call inside the transaction that records `matched`."""
    sql, params = targets.order_by().values("id").query.sql_with_params()
    table = OperationTarget._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (operation_id, job_id) SELECT %s, t.id FROM ({sql}) t",
                       [operation_id, *params])
        return cursor.rowcount


def _next_batch(operation_id: int, cursor: str) -> list[UUID]:
    qs = OperationTarget.objects.filter(operation_id=operation_id)
    if cursor:
        qs = qs.filter(job_id__gt=UUID(cursor))
    return list(qs.order_by("job_id").values_list("job_id", flat=True)[:BATCH])


def _stop_if_asked(row: OperatorAction) -> None:
    """Between batches: if the operation's own job was asked to stop, end here.

    The job row is read (one primary-key lookup per batch) rather than only the
    heartbeat's event, which lags by up to a third of the lease; a job already
    cancelled (run outside a worker, say by hand) stops it too. The row goes
    cancelled with the committed batches' counts, then JobCancelled ends the
    job cancelled (the worker's `stop_cancelled`).
    """
    ctx = current_job()
    asked = (ctx is not None and ctx.cancel_requested) or Job.objects.filter(
        Q(cancel_requested_at__isnull=False) | Q(status=JobStatus.CANCELLED),
        pk=row.job_id).exists()
    if asked:
        OperatorAction.objects.filter(pk=row.pk, status=RUNNING).update(
            status=OperationStatus.CANCELLED, finished_at=timezone.now())
        raise JobCancelled(f"operation {row.pk} was cancelled (its job {row.job_id})")
    if ctx is not None:
        ctx.raise_if_cancelled()  # lost to the reaper: stop before another batch


def settle(row: OperatorAction) -> bool:
    """End a running operation whose job has ended, as its job ended; True if this call did.

    The outcome is read from the job (and its last attempt, for why it died),
    then written by one UPDATE that matches only while the operation is still
    running and its job still has the status read, so a concurrent settle, or
    an operator requeueing the job meanwhile, cannot be overwritten.
    """
    if row.status != RUNNING:
        return False
    job = (Job.objects.filter(pk=row.job_id).values("status", "last_error").first()
           if row.job_id else None)
    if job is None:
        status, error = OperationStatus.FAILED, JOB_GONE
        still = ~Exists(Job.objects.filter(pk=OuterRef("job_id")))
    elif JobStatus(job["status"]).is_terminal:
        status, error = _outcome(row.job_id, job["status"], job["last_error"])
        still = Exists(Job.objects.filter(pk=OuterRef("job_id"), status=job["status"]))
    else:
        return False
    now = timezone.now()
    won = OperatorAction.objects.filter(Q(pk=row.pk, status=RUNNING), still).update(
        status=status, error=error[:2000], finished_at=now)
    row.refresh_from_db()
    return bool(won)


def _outcome(job_id: UUID, job_status: str, last_error: str) -> tuple[OperationStatus, str]:
    if job_status == JobStatus.SUCCEEDED:
        return OperationStatus.DONE, ""
    if job_status == JobStatus.CANCELLED:
        return OperationStatus.CANCELLED, ""
    last = (Attempt.objects.filter(job_id=job_id).order_by("-number")
            .values_list("status", flat=True).first())
    if last == AttemptStatus.LOST:
        return OperationStatus.FAILED, f"{WORKER_LOST}. {last_error}"
    if last == AttemptStatus.TIMED_OUT:
        return OperationStatus.FAILED, f"{TIMED_OUT}. {last_error}"
    return OperationStatus.FAILED, last_error or "its job died"


def on_job_finished(sender: Any, job: Job, status: str, **_: Any) -> None:
    """`jobs.signals.job_finished` receiver: settle the operation a bulk job carried out."""
    if job.task_name != TASK or not JobStatus(status).is_terminal:
        return
    for row in OperatorAction.objects.filter(job_id=job.pk, status=RUNNING):
        settle(row)


def report(row: OperatorAction) -> str:
    """The words for an operation's outcome so far, as both consoles show it.

    Reading a running operation settles it first if its job has ended (see
    `settle`): this is how an end that sent no signal reaches the row.
    """
    if row.status == RUNNING:
        settle(row)
    action = operations.ACTIONS.get(row.action)
    verb = action.done_verb if action else row.action
    text = f"{verb} {row.done:,}, skipped {row.skipped:,}"
    if row.skipped_reasons:
        text += " (" + "; ".join(f"{n:,} {why}" for why, n in row.skipped_reasons.items()) + ")"
    handled = row.done + row.skipped
    of = f" of {row.matched:,}" if row.matched is not None else ""
    if row.status == RUNNING:
        return f"Working: {handled:,}{of} handled so far. {text}."
    if row.status == OperationStatus.FAILED:
        return f"Stopped by an error after {handled:,}{of}: {text[0].lower() + text[1:]}. " \
               f"{row.error[:300]}"
    if row.status == OperationStatus.CANCELLED:
        return f"Cancelled after {handled:,}{of}: {text[0].lower() + text[1:]}."
    return text[0].upper() + text[1:] + "."
