"""An action on every job that matches a filter, however many: run by a job of its own.

`start` checks the permission, counts the matches, writes the audit row
(status running) and enqueues `jobs.bulk_action` in one transaction, so there
is never an operation without its job or a job without its row. The job walks
the matching jobs in id order, a batch at a time; each batch's transitions and
the progress they made (counts, the last id) commit together, so a worker
killed mid-run leaves the counts true and the retry continues after the last
committed batch. The final report is the row's counts: done X, skipped Y and
why, never more than was done.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import conf
from jobs.core.enqueue import enqueue
from jobs.models import OperationStatus, OperatorAction
from jobs.ops import audit, operations, search
from jobs.ops.presentation import capped_count

TASK = "jobs.bulk_action"
BATCH = 500


def start(name: str, user: Any, filters: dict[str, Any], *, note: str = "") -> OperatorAction:
    """Start action `name` on every job matching `filters` (cleaned values) for `user`."""
    action = operations.ACTIONS[name]
    if not action.allowed(user):
        raise PermissionDenied(f"{user} may not {action.name} jobs ({action.permission})")
    now = timezone.now()
    stored = search.freeze(filters, now)
    with transaction.atomic():
        row = audit.record(name, user, {"filter": stored}, note=note,
                           status=OperationStatus.RUNNING)
        counted = capped_count(_targets(search.thaw(stored)))
        row.matched = None if counted.capped else counted.value  # run() counts the rest
        # The default queue (JOBS['DEFAULT_QUEUE']), which the project's clusters serve.
        job = enqueue(TASK, row.pk, max_attempts=5, queue=conf.get().default_queue)
        row.job = job
        row.save(update_fields=["matched", "job"])
    return row


def run(operation_id: int) -> dict[str, Any]:
    """The body of jobs.bulk_action: finish the operation, from where it stood."""
    row = OperatorAction.objects.select_related("user").get(pk=operation_id)
    if row.status != OperationStatus.RUNNING:
        return {"done": row.done, "skipped": row.skipped}  # a second run changes nothing
    action = operations.ACTIONS[row.action]
    filters = search.thaw(row.target["filter"])
    if row.matched is None:  # past the request's cap: count them here, once
        row.matched = _targets(filters).count()
        OperatorAction.objects.filter(pk=row.pk).update(matched=row.matched)
    cursor = row.cursor
    while True:
        qs = _targets(filters).order_by("id").values_list("id", flat=True)
        if cursor:
            qs = qs.filter(id__gt=cursor)
        ids = list(qs[:BATCH])
        if not ids:
            break
        with transaction.atomic():
            result = action.run(ids, row.user, **({"note": row.note} if row.note and
                                                   action.name == "resolve" else {}))
            reasons = dict(row.skipped_reasons)
            for why, n in operations.skip_reasons(action, result).items():
                reasons[why] = reasons.get(why, 0) + n
            cursor = str(ids[-1])
            OperatorAction.objects.filter(pk=row.pk, status=OperationStatus.RUNNING).update(
                done=F("done") + len(result.done),
                skipped=F("skipped") + len(result.skipped) + len(result.requested),
                skipped_reasons=reasons, cursor=cursor)
            row.skipped_reasons = reasons
    row.refresh_from_db()
    OperatorAction.objects.filter(pk=row.pk, status=OperationStatus.RUNNING).update(
        status=OperationStatus.DONE, finished_at=timezone.now())
    return {"done": row.done, "skipped": row.skipped}


def give_up(operation_id: int, exc: BaseException) -> None:
    """Mark the operation failed after its last attempt: its counts stay as committed."""
    OperatorAction.objects.filter(pk=operation_id, status=OperationStatus.RUNNING).update(
        status=OperationStatus.FAILED, finished_at=timezone.now(),
        error=f"{type(exc).__name__}: {exc}"[:2000])


def _targets(filters: dict[str, Any]) -> Any:
    """The matching jobs, never an operation's own job (cancel all running, say)."""
    return search.matching(filters).exclude(task_name=TASK)


def report(row: OperatorAction) -> str:
    """The words for an operation's outcome so far, as both consoles show it."""
    action = operations.ACTIONS.get(row.action)
    verb = action.done_verb if action else row.action
    parts = [f"{verb} {row.done:,}", f"skipped {row.skipped:,}"]
    text = ", ".join(parts)
    if row.skipped_reasons:
        text += " (" + "; ".join(f"{n:,} {why}" for why, n in row.skipped_reasons.items()) + ")"
    if row.status == OperationStatus.RUNNING:
        of = f" of {row.matched:,}" if row.matched is not None else ""
        return f"Working: {row.done + row.skipped:,}{of} handled so far. {text}."
    if row.status == OperationStatus.FAILED:
        return f"Stopped by an error after: {text[0].lower() + text[1:]}. {row.error[:300]}"
    return text[0].upper() + text[1:] + "."
