"""The audit log: every operator action, who did it, to what, and what really happened.

Written in the same transaction as the action where the action is one
transaction (a pause); after it otherwise, with the counts the action
reported, so the log never claims more than was done.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from jobs.models import OperationStatus, OperatorAction
from jobs.models.ids import short_id

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
    """The audit log's words for what an action was applied to: what an operator would
    say ("job 7f3a9c21 (reports.build)", "every dead job of task “reports.build”"), not
    the stored filter's keys."""
    if "queue" in target:
        return f"queue {target['queue']}"
    if "ids" in target:
        n = len(target["ids"])
        if n == 1:  # one job, as its page acts on it
            task = f" ({target['task']})" if target.get("task") else ""
            return f"job {short_id(target['ids'][0])}{task}"
        return f"{n} selected job{'s' if n != 1 else ''}"
    if "filter" in target:
        return _filter_words(target["filter"])
    if "schedule" in target:
        return f"schedule {target['schedule']}"
    if "step" in target:
        return f"step {target['step']} of job {target.get('job', '')}"
    return ""


def _filter_words(stored: dict[str, Any]) -> str:
    """A stored filter (jobs.ops.search.freeze) in words."""
    f = {k: v for k, v in stored.items() if v not in ("", None)}
    words = ["every", f"{f['status']} job" if f.get("status") else "job"]
    phrases = {"task": "of task “{}”", "queue": "in queue “{}”", "cause": "that failed with “{}”",
               "q": "found by “{}”", "since": "created from {}", "until": "created until {}"}
    for key, phrase in phrases.items():
        if key in f:
            value = f[key] if key not in ("since", "until") else _when(f[key])
            words.append(phrase.format(value))
    if "letter" in f:
        words.append("with an unresolved dead letter" if f["letter"] == "open"
                     else "whose dead letter is resolved")
    if "args" in f:
        words.append(f"with arguments {json.dumps(f['args'], ensure_ascii=False)}")
    text = " ".join(words)
    before = f.get("created_before")
    return f"{text}, enqueued before {_when(before)}" if before else text


def _when(iso: str) -> str:
    return str(iso)[:19].replace("T", " ")
