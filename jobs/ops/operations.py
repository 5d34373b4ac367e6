"""Operator actions, shared by the admin and the dashboard.

One place decides who may do what and how the outcome is told, so an action
means the same on every screen: each checks its permission, goes through
`jobs.core.transitions`, and reports what it did *and* what it refused
("Requeued 48, skipped 2 that are not dead or cancelled").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError

from jobs import database
from jobs.core import transitions
from jobs.core.serialization import stored_json
from jobs.core.transitions import BulkResult
from jobs.exceptions import UnstorableValue
from jobs.models import Job, JobStatus, Schedule, Step
from jobs.ops import audit
from jobs.scheduling import firing

ASKED_TO_STOP = "running: asked to stop at their next safe point"
NOT_FOUND = "not found (no such job)"
AUDIT_IDS = 1000  # a selection is a page or a few; the log keeps at most this many ids


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    permission: str
    run: Callable[..., BulkResult]
    done_verb: str
    skipped_reason: str
    # Statuses this action can change, so screens offer only buttons that work.
    applies_to: frozenset[str]

    def applies(self, status: str) -> bool:
        return status in self.applies_to

    def allowed(self, user: Any) -> bool:
        return bool(user and user.is_active and user.is_staff and user.has_perm(self.permission))


@dataclass(frozen=True)
class Report:
    action: Action
    result: BulkResult

    @property
    def message(self) -> str:
        r = self.result
        parts = [f"{self.action.done_verb} {len(r.done)}"]
        if r.requested:
            parts.append(f"asked {len(r.requested)} running to stop at their next safe point")
        why = {k: n for k, n in skip_reasons(self.action, r).items() if k != ASKED_TO_STOP}
        if not why:
            parts.append("skipped none")
        elif len(why) == 1:
            parts.append(f"skipped {len(r.skipped)} {next(iter(why))}")
        else:
            parts.append(f"skipped {len(r.skipped)} ("
                         + ", ".join(f"{n} {k}" for k, n in why.items()) + ")")
        return ", ".join(parts) + "."


def _requeue(ids: list[UUID], user: Any) -> BulkResult:
    return transitions.requeue(ids, by=user, note=f"requeued by {user}")


def _resume(ids: list[UUID], user: Any) -> BulkResult:
    return transitions.resume(ids, by=user, note=f"resumed by {user}")


def _cancel(ids: list[UUID], user: Any) -> BulkResult:
    return transitions.cancel(ids)


def _resolve(ids: list[UUID], user: Any, note: str = "") -> BulkResult:
    return transitions.resolve_dead_letters_of_jobs(
        ids, by=user, note=note or f"resolved by {user}"
    )


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("requeue", "Requeue (start over)", "jobs.requeue_job", _requeue,
               "Requeued", "that are not dead or cancelled", transitions.REQUEUE.sources),
        Action("resume", "Resume from the failed step", "jobs.resume_job", _resume,
               "Resumed", "that are not dead, cancelled or waiting to retry",
               transitions.RESUME.sources),
        Action("cancel", "Cancel", "jobs.cancel_job", _cancel,
               "Cancelled", "that had already finished",
               transitions.CANCEL.sources | {JobStatus.RUNNING}),
        Action("resolve", "Resolve dead letters", "jobs.resolve_deadletter", _resolve,
               "Resolved", "without an open dead letter", frozenset({JobStatus.DEAD})),
    )
}


def available(user: Any) -> list[Action]:
    """The actions this user may see and use."""
    return [a for a in ACTIONS.values() if a.allowed(user)]


def label(name: str) -> str:
    """What screens call an action (also one the audit log keeps, like "pause_queue")."""
    known = ACTIONS.get(name)
    return known.label if known else name.replace("_", " ").capitalize()


def available_for_job(user: Any, status: str, has_open_letter: bool) -> list[Action]:
    """The buttons one job's page offers `user`: only actions that can change it."""
    return [a for a in available(user)
            if a.applies(status) and (a.name != "resolve" or has_open_letter)]


def skip_reasons(action: Action, result: BulkResult) -> dict[str, int]:
    """What an action left alone and why, counted, as the audit log keeps it.

    The transitions skip an id both when its job is in another status and when
    there is no such job (a typo, or purged since it was listed); saying "not
    dead or cancelled" of a job that does not exist would be a false reason, so
    the skipped ids are looked up once (one indexed query, only when some were
    skipped) and the missing ones counted as not found.
    """
    reasons: dict[str, int] = {}
    if result.skipped:
        found = {str(pk) for pk in Job.objects.filter(pk__in=set(result.skipped))
                 .values_list("pk", flat=True)}
        there = sum(1 for pk in result.skipped if str(pk) in found)  # per id, as counted
        if there:
            reasons[action.skipped_reason] = there
        if len(result.skipped) - there:
            reasons[NOT_FOUND] = len(result.skipped) - there
    if result.requested:
        reasons[ASKED_TO_STOP] = len(result.requested)
    return reasons


def perform(name: str, user: Any, job_ids: Iterable[UUID | str], **options: Any) -> Report:
    """Run action `name` on `job_ids` for `user`, or raise PermissionDenied / KeyError."""
    action = ACTIONS[name]
    if not action.allowed(user):
        raise PermissionDenied(f"{user} may not {action.name} jobs ({action.permission})")
    ids = [UUID(str(pk)) for pk in job_ids]
    report = Report(action, action.run(ids, user, **options))
    r = report.result
    target: dict[str, Any] = {"ids": [str(pk) for pk in ids[:AUDIT_IDS]]}
    if len(ids) == 1:  # one job (its page's buttons): the log names it by its task too
        task = Job.objects.filter(pk=ids[0]).values_list("task_name", flat=True).first()
        if task:
            target["task"] = task
    audit.record(name, user, target,
                 done=len(r.done), skipped=len(r.skipped) + len(r.requested),
                 reasons=skip_reasons(action, r), note=options.get("note", ""))
    return report


def validate_limits(current: dict[str, Any], proposed: Any) -> dict[str, Any]:
    """Check an operator's edit of a step's limits before it is saved.

    Only the settings the code declared may change, each keeping its type, and
    numbers stay positive: a typo must not become a silent new setting. The
    value must also be storable exactly (`serialization.stored_json`: no NaN or
    Infinity, no NUL or lone surrogate, bounded depth, integers and size), so
    saving it is never a database error and it reads back as it was checked.
    """
    if not isinstance(proposed, dict):
        raise ValidationError("Limits must be a JSON object, e.g. {\"max_tokens\": 4000}.")
    try:
        proposed = stored_json(proposed, "limits", 100_000)
    except UnstorableValue as exc:
        raise ValidationError(f"Limits cannot be stored: {exc}.") from None
    unknown = sorted(set(proposed) - set(current))
    if unknown:
        raise ValidationError(
            f"Unknown limit(s) {unknown}; this step declares {sorted(current) or 'none'}."
        )
    for key, value in proposed.items():
        expected = type(current[key])
        if isinstance(value, bool) != isinstance(current[key], bool) or not isinstance(
            value, (int, float) if expected is float else expected
        ):
            raise ValidationError(
                f"Limit {key!r} must be of type {expected.__name__}, got {value!r}."
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise ValidationError(f"Limit {key!r} must be positive, got {value!r}.")
    return {**current, **proposed}


def can_edit_limits(user: Any) -> bool:
    """Raising a step's limits is part of resuming its job: the same permission."""
    return ACTIONS["resume"].allowed(user)


def save_step_limits(user: Any, step: Step, proposed: Any) -> dict[str, Any]:
    """Validate and save an operator's limits for `step`; the one path for admin and dashboard.

    Writes the limits column only: status and progress that a worker wrote
    while the form was open stay as they are.
    """
    if not can_edit_limits(user):
        raise PermissionDenied(f"{user} may not edit step limits (jobs.resume_job)")
    limits = validate_limits(step.limits or {}, proposed)
    with database.atomic():
        Step.objects.filter(pk=step.pk).update(limits=limits)
        audit.record("edit_limits", user, {"step": step.name, "job": str(step.job_id)},
                     done=1, note=json.dumps(limits, sort_keys=True)[:2000])
    step.limits = limits
    return limits


def can_run_schedules(user: Any) -> bool:
    """Running a schedule now enqueues a job: it needs the right to change schedules,
    not just to view them."""
    return bool(user and user.is_active and user.is_staff
                and user.has_perm("jobs.change_schedule"))


def run_schedule_now(user: Any, schedule: Schedule) -> Job:
    """Enqueue one run of `schedule` now, for `user`; PermissionDenied without the right."""
    if not can_run_schedules(user):
        raise PermissionDenied(f"{user} may not run schedules (jobs.change_schedule)")
    with database.atomic():
        job = firing.run_now(schedule)
        audit.record("run_schedule", user, {"schedule": schedule.name, "job": str(job.pk)},
                     done=1)
    return job
