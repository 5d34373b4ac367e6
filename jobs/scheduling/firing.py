"""Firing schedules: exactly once per due time, however many clusters run.

Every cluster runs `fire_due` from its maintenance thread. A due schedule is
claimed by one conditional UPDATE of `next_run_at` (it must still hold the
value that was read), so two clusters never both fire the same due time; the
job is enqueued with the idempotency key `schedule:<pk>:<due time>`, so even a
double claim could not make two jobs. Claim and enqueue commit together: a
crash in between leaves the schedule due, and another tick fires it.
"""

from __future__ import annotations

import enum
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from jobs import database
from jobs.core.clock import database_now, read_database_now
from jobs.core.enqueue import enqueue, validate_task_call
from jobs.exceptions import JobsError
from jobs.models import Job, JobStatus, MisfirePolicy, OverlapPolicy, Schedule
from jobs.scheduling.cron import (
    last_run_at_or_before,
    next_run_after,
    require_aware,
    validate_cron,
    validate_time_zone,
)

logger = logging.getLogger("jobs.schedules")

# A due time fired later than this counts as missed (downtime): its misfire
# policy decides. An idle cluster fires within about a second.
MISFIRE_GRACE = timedelta(seconds=60)
# Schedules fired per tick and cluster; the rest wait for the next tick.
FIRE_BATCH = 100


# --- validation and planning ---------------------------------------------------------


def validate_schedule(schedule: Schedule) -> None:
    """Model-level validation: every problem raised on its own field."""
    errors: dict[str, list[Any]] = {}
    # A blank JSON field in a form arrives as None: it means "no arguments".
    schedule.args = [] if schedule.args is None else schedule.args
    schedule.kwargs = {} if schedule.kwargs is None else schedule.kwargs
    if schedule.cron:
        try:
            schedule.cron = validate_cron(schedule.cron)
        except ValidationError as exc:
            errors["cron"] = exc.error_list
    if schedule.time_zone:
        try:
            validate_time_zone(schedule.time_zone)
        except ValidationError as exc:
            errors["time_zone"] = exc.error_list
    if schedule.task_name:
        errors.update(validate_task_call(schedule.task_name, schedule.args, schedule.kwargs))
    if errors:
        raise ValidationError(errors)


def plan_next_run(schedule: Schedule, now: datetime | None = None) -> None:
    """Set next_run_at on save: cleared when disabled, recomputed when the timing changed.

    A schedule enabled again after a pause starts from now, so the pause does
    not count as downtime to catch up on.
    """
    if not schedule.enabled:
        schedule.next_run_at = None
        return
    if schedule.next_run_at is not None and not schedule._state.adding:
        saved = Schedule.objects.filter(pk=schedule.pk).values(
            "cron", "time_zone", "enabled"
        ).first()
        current = {"cron": schedule.cron, "time_zone": schedule.time_zone, "enabled": True}
        if saved == current:
            return
    elif schedule.next_run_at is not None:
        return  # a new row with an explicit first run time
    # From the database's clock, the one fire_due compares with: a web host whose
    # clock runs ahead would otherwise plan past a due time that has not come yet.
    schedule.next_run_at = next_run_after(
        schedule.cron, schedule.time_zone, now or read_database_now()
    )


def create_schedule(name: str, task_name: str, cron: str, time_zone: str, **fields: Any
                    ) -> Schedule:
    """Create a validated schedule from code; raises ValidationError like the admin form."""
    schedule = Schedule(name=name, task_name=task_name, cron=cron, time_zone=time_zone, **fields)
    schedule.save()  # validated and planned by validate_and_plan
    return schedule


def validate_and_plan(sender: type[Schedule], instance: Schedule, raw: bool = False,
                      **kwargs: Any) -> None:
    """`pre_save` receiver (connected in JobsConfig.ready): every save is validated
    and planned, from the admin, a shell or code. Fixtures (`raw`) load as they are."""
    if raw:
        return
    errors: dict[str, Any] = {}
    for validate in (instance.full_clean, lambda: validate_schedule(instance)):
        try:
            validate()
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)
    plan_next_run(instance)


# --- firing -------------------------------------------------------------------------


class Outcome(enum.Enum):
    ENQUEUED = "enqueued"
    LOST_CLAIM = "lost claim"  # another cluster fired this due time
    MISFIRE_SKIPPED = "missed, skipped"
    OVERLAP_SKIPPED = "previous job unfinished, skipped"
    FAILED = "failed"


def fire_due(now: datetime | None = None) -> int:
    """Fire every due schedule once; return how many jobs this call enqueued.

    Safe in any number of clusters at once: see the module docstring.

    Due means due by the database's clock, never this host's: without `now`, the
    query that finds the due schedules compares with the database's clock and
    returns it with each row (one reading per tick, no statement of its own), and
    that reading is the `now` of the slot and misfire arithmetic.
    """
    if now is not None:
        require_aware(now)
    due = Schedule.objects.filter(
        enabled=True, next_run_at__lte=database_now(now),
    ).annotate(database_now=database_now(now)).order_by("next_run_at")[:FIRE_BATCH]
    enqueued = 0
    for schedule in due:
        now = schedule.database_now
        try:
            outcome = fire(schedule, now)
        except Exception:
            # One broken schedule must not starve the others; the claim rolled back.
            logger.exception("schedule %s could not fire; will retry", schedule.name)
            continue
        enqueued += outcome is Outcome.ENQUEUED
    return enqueued


def plan_fire(cron: str, time_zone: str, due_at: datetime, now: datetime
              ) -> tuple[datetime, datetime]:
    """(the slot a tick at `now` fires, the next run after it) for a schedule due at
    `due_at`. Pure: no database, no clock.

    On time (at most MISFIRE_GRACE late) the slot is `due_at` itself, on the
    cron grid or not: an explicit first run time off the grid fires as its own
    slot. Later than that, runs were missed (downtime): the slot is the latest
    cron time at or before `now`, or `due_at` if that is later, and the misfire
    policy decides whether it runs; the earlier missed times are skipped on
    purpose. Either way the next run is the first cron time after the *slot*,
    never after `now`: a cron time that falls between the slot and the tick
    (next run 19:38:59.95, tick 19:39:00.15) is due at once and fires on the
    next tick instead of being lost.
    """
    fire_at = due_at if now - due_at <= MISFIRE_GRACE else max(
        due_at, last_run_at_or_before(cron, time_zone, now)
    )
    return fire_at, next_run_after(cron, time_zone, fire_at)


def fire(schedule: Schedule, now: datetime) -> Outcome:
    """Claim the due time read in `schedule.next_run_at` and act on it, in one transaction."""
    due_at = schedule.next_run_at
    fire_at, following = plan_fire(schedule.cron, schedule.time_zone, due_at, now)
    with database.atomic():
        claimed = Schedule.objects.filter(
            pk=schedule.pk, enabled=True, next_run_at=due_at
        ).update(next_run_at=following)
        if not claimed:
            return Outcome.LOST_CLAIM
        schedule.next_run_at = following
        if now - fire_at > MISFIRE_GRACE and schedule.misfire_policy == MisfirePolicy.SKIP:
            logger.warning("schedule %s missed %s (down?); skipped to %s", schedule.name,
                           due_at.isoformat(), following.isoformat())
            return Outcome.MISFIRE_SKIPPED
        if schedule.overlap_policy == OverlapPolicy.SKIP and has_unfinished_job(schedule):
            logger.info("schedule %s skipped %s: its previous job is unfinished",
                        schedule.name, fire_at.isoformat())
            return Outcome.OVERLAP_SKIPPED
        key = f"schedule:{schedule.pk}:{fire_at.astimezone(UTC).isoformat()}"
        return _enqueue(schedule, key, now)


def run_now(schedule: Schedule, now: datetime | None = None) -> Job:
    """Enqueue one job for the schedule immediately, outside its timetable.

    Its own key ("schedule:<pk>:now:<time>") leaves the due-time keys and
    next_run_at alone, so the regular firing is unaffected.
    """
    now = now or timezone.now()
    key = f"schedule:{schedule.pk}:now:{now.astimezone(UTC).isoformat()}"
    with database.atomic():
        outcome = _enqueue(schedule, key, now)
    if outcome is Outcome.FAILED:
        raise JobsError(f"schedule {schedule.name} could not enqueue: {schedule.last_error}")
    return schedule.last_job


def has_unfinished_job(schedule: Schedule) -> bool:
    """Any job of this schedule (timetabled or run now) that is not terminal yet."""
    unfinished = [s for s in JobStatus if s not in JobStatus.terminal()]
    return Job.objects.filter(
        status__in=unfinished, idempotency_key__startswith=f"schedule:{schedule.pk}:"
    ).exists()


def _enqueue(schedule: Schedule, key: str, now: datetime) -> Outcome:
    jitter = schedule.jitter_seconds
    try:
        with database.atomic():
            job = enqueue(
                schedule.task_name, *schedule.args, idempotency_key=key,
                run_after=timedelta(seconds=random.uniform(0, jitter)) if jitter else None,
                **schedule.kwargs,
            )
    except JobsError as exc:
        # The task was removed or changed its signature since the schedule was saved.
        Schedule.objects.filter(pk=schedule.pk).update(last_error=str(exc))
        schedule.last_error = str(exc)
        logger.error("schedule %s could not enqueue %s: %s", schedule.name,
                     schedule.task_name, exc)
        return Outcome.FAILED
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=now, last_job=job, last_error="")
    schedule.last_run_at, schedule.last_job, schedule.last_error = now, job, ""
    return Outcome.ENQUEUED
