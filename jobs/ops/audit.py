"""The audit log: every operator action, who did it, to what, and what really happened.

Written in the same transaction as the action where the action is one
transaction (a pause); after it otherwise, with the counts the action
reported, so the log never claims more than was done.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from jobs.models import OperationStatus, OperatorAction

SHOWN = 100


def record(action: str, user: Any, target: dict[str, Any], *, done: int = 0, skipped: int = 0,
           reasons: dict[str, int] | None = None, note: str = "",
           status: OperationStatus = OperationStatus.DONE) -> OperatorAction:
    now = timezone.now()
    return OperatorAction.objects.create(
        action=action, user=user if getattr(user, "pk", None) else None,
        username=user.get_username() if getattr(user, "pk", None) else "",
        target=target, note=note[:2000], status=status, matched=done + skipped
        if status == OperationStatus.DONE else None, done=done, skipped=skipped,
        skipped_reasons=reasons or {}, created_at=now,
        finished_at=now if status != OperationStatus.RUNNING else None,
    )


def recent(limit: int = SHOWN) -> QuerySet[OperatorAction]:
    return OperatorAction.objects.order_by("-created_at", "-id")[:limit]


def describe_target(target: dict[str, Any]) -> str:
    """The audit log's words for what an action was applied to."""
    if "queue" in target:
        return f"queue {target['queue']}"
    if "ids" in target:
        n = len(target["ids"])
        return f"{n} selected job{'s' if n != 1 else ''}"
    if "filter" in target:
        stored = dict(target["filter"])
        before = stored.pop("created_before", None)
        parts = [f"{k}={v}" for k, v in sorted(stored.items()) if v not in ("", None)]
        text = "every job matching " + (", ".join(parts) or "no filter")
        return f"{text}, enqueued before {before[:19].replace('T', ' ')}" if before else text
    if "schedule" in target:
        return f"schedule {target['schedule']}"
    if "step" in target:
        return f"step {target['step']} of job {target.get('job', '')}"
    return ""
