"""Schedules: enqueue a registered task at the times of a cron expression.

Every cluster runs `fire_due` from its maintenance thread. A due schedule is
claimed by one conditional UPDATE of `next_run_at` (it must still hold the
value that was read), so two clusters never both fire the same due time; the
job is enqueued with the idempotency key `schedule:<pk>:<due time>`, so even a
double claim could not make two jobs. Claim and enqueue commit together: a
crash in between leaves the schedule due, and another tick fires it.

Time rules (see docs/schedules.md): the expression is read in the schedule's
IANA time zone and each wall-clock time fires at most once. A time the clock
shows twice (autumn) fires at its first occurrence; a time the clock skips
(spring) fires at the first valid instant after the gap, e.g. 03:00 for
02:30 in Europe/Berlin. croniter itself fires repeated times twice, so we
iterate it on naive wall-clock times and map them to instants ourselves.
"""

from __future__ import annotations

import enum
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterError, croniter
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from jobs import conf
from jobs.api import ENQUEUE_OPTIONS, _json_value, enqueue, get_task
from jobs.exceptions import JobsError, UnknownTaskError
from jobs.models import (
    DeadLetter,
    Job,
    JobStatus,
    MisfirePolicy,
    OperationKey,
    OverlapPolicy,
    Schedule,
)

logger = logging.getLogger("jobs.schedules")

# A due time fired later than this counts as missed (downtime): its misfire
# policy decides. An idle cluster fires within about a second.
MISFIRE_GRACE = timedelta(seconds=60)
# Schedules fired per tick and cluster; the rest wait for the next tick.
FIRE_BATCH = 100
# Cron steps tried before giving up on finding a time (guards odd expressions).
MAX_STEPS = 10_000
PURGE_BATCH = 1000
ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


# --- time math ----------------------------------------------------------------


def next_run_after(cron: str, time_zone: str, after: datetime) -> datetime:
    """The first due time strictly after `after`, as an aware UTC datetime."""
    _require_aware(after)
    tz = ZoneInfo(time_zone)
    walls = croniter(cron, after.astimezone(tz).replace(tzinfo=None))
    for _ in range(MAX_STEPS):
        instant = _instant(walls.get_next(datetime), tz)
        if instant > after:
            return instant.astimezone(UTC)
    raise ValueError(f"no run time of {cron!r} found after {after.isoformat()}")


def last_run_at_or_before(cron: str, time_zone: str, at: datetime) -> datetime:
    """The latest due time at or before `at` (UTC, aware); the mirror of next_run_after."""
    _require_aware(at)
    tz = ZoneInfo(time_zone)
    start = at.astimezone(tz).replace(tzinfo=None) + timedelta(microseconds=1)
    walls = croniter(cron, start)
    for _ in range(MAX_STEPS):
        instant = _instant(walls.get_prev(datetime), tz)
        if instant <= at:
            return instant.astimezone(UTC)
    raise ValueError(f"no run time of {cron!r} found before {at.isoformat()}")


def upcoming(cron: str, time_zone: str, count: int = 5, after: datetime | None = None
             ) -> list[datetime]:
    """The next `count` due times (UTC, aware): what the admin preview and `schedules list` show."""
    when = after or timezone.now()
    times: list[datetime] = []
    for _ in range(count):
        when = next_run_after(cron, time_zone, when)
        times.append(when)
    return times


def format_run(when: datetime, time_zone: str) -> str:
    """A due time as operators read it: local in the schedule's zone, then UTC."""
    local = when.astimezone(ZoneInfo(time_zone))
    return (f"{local:%Y-%m-%d %H:%M %Z} ({time_zone}) = "
            f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """Map a naive wall-clock time to one instant: first occurrence, or end of a DST gap."""
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first occurrence of a repeated time
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first valid instant after the DST gap that swallowed `wall` (e.g. 03:00)."""
    # fold=1 reads the wall time with the offset after the change, fold=0 with
    # the one before: the change happened between those two instants.
    lo = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    after_offset = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz)


def _require_aware(value: datetime) -> None:
    if timezone.is_naive(value):
        raise ValueError(f"expected a timezone-aware datetime, got naive {value!r}")


# --- validation -----------------------------------------------------------------


def validate_cron(expression: str) -> str:
    """Return the expression normalized, or raise ValidationError saying what is wrong.

    Minute resolution only (five fields or an @alias): seconds would need a
    faster tick than the maintenance thread's. croniter's random (R) and hashed
    (H) fields are refused: their times would differ between clusters.
    """
    expr = " ".join(str(expression).split())
    if not expr:
        raise ValidationError("Enter a cron expression.", code="required")
    if expr.startswith("@"):
        if expr.lower() not in ALIASES:
            raise ValidationError(
                f"Unknown alias {expr!r}; use one of {', '.join(sorted(ALIASES))}.",
                code="invalid_cron",
            )
        expr = expr.lower()
    else:
        fields = expr.split(" ")
        if len(fields) != 5:
            raise ValidationError(
                f"A cron expression has 5 fields (minute hour day month weekday), "
                f"{expr!r} has {len(fields)}.",
                code="invalid_cron",
            )
        tokens = {t.upper() for f in fields for t in _split_tokens(f)}
        if tokens & {"R", "H"}:
            raise ValidationError(
                "Random (R) and hashed (H) cron fields are not supported.", code="invalid_cron"
            )
    try:
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterError as exc:
        raise ValidationError(
            f"Invalid cron expression {expr!r}: {exc}", code="invalid_cron"
        ) from None
    return expr


def _split_tokens(field: str) -> list[str]:
    for sep in ",/-()#":
        field = field.replace(sep, " ")
    return field.split()


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(name: str) -> str:
    if not name:
        raise ValidationError("Enter an IANA time zone, e.g. Europe/Berlin or UTC.",
                              code="required")
    if name not in known_time_zones():
        raise ValidationError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC.",
            code="invalid_time_zone",
        )
    return name


def validate_task_call(task_name: str, args: Any, kwargs: Any) -> dict[str, list[str]]:
    """What enqueue() would refuse about this call, keyed by field; empty if it is fine."""
    try:
        task = get_task(task_name)
    except UnknownTaskError as exc:
        return {"task_name": [str(exc)]}
    errors: dict[str, list[str]] = {}
    if not isinstance(args, list):
        errors["args"] = [f"args must be a JSON list, got {type(args).__name__}."]
    if not isinstance(kwargs, dict):
        errors["kwargs"] = [f"kwargs must be a JSON object, got {type(kwargs).__name__}."]
    elif reserved := sorted(ENQUEUE_OPTIONS & set(kwargs)):
        errors["kwargs"] = [f"kwargs may not use enqueue() option names: {reserved}."]
    if errors:
        return errors
    try:
        task.signature.bind(*args, **kwargs)
    except TypeError as exc:
        field = "kwargs" if "keyword" in str(exc) or "multiple values" in str(exc) else "args"
        return {field: [f"Arguments do not fit task {task.name!r}: {exc}"]}
    for field, values in (("args", dict(enumerate(args))), ("kwargs", kwargs)):
        for key, value in values.items():
            try:
                _json_value(value, f"{field}[{key!r}]", task.name)
            except JobsError as exc:
                errors.setdefault(field, []).append(str(exc))
    return errors


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
    schedule.next_run_at = next_run_after(
        schedule.cron, schedule.time_zone, now or timezone.now()
    )


def create_schedule(name: str, task_name: str, cron: str, time_zone: str, **fields: Any
                    ) -> Schedule:
    """Create a validated schedule from code; raises ValidationError like the admin form."""
    schedule = Schedule(name=name, task_name=task_name, cron=cron, time_zone=time_zone, **fields)
    schedule.save()
    return schedule


# --- firing -----------------------------------------------------------------------


class Outcome(enum.Enum):
    ENQUEUED = "enqueued"
    LOST_CLAIM = "lost claim"  # another cluster fired this due time
    MISFIRE_SKIPPED = "missed, skipped"
    OVERLAP_SKIPPED = "previous job unfinished, skipped"
    FAILED = "failed"


def fire_due(now: datetime | None = None) -> int:
    """Fire every due schedule once; return how many jobs this call enqueued.

    Safe in any number of clusters at once: see the module docstring.
    """
    now = now or timezone.now()
    _require_aware(now)
    due = Schedule.objects.filter(enabled=True, next_run_at__lte=now).order_by(
        "next_run_at"
    )[:FIRE_BATCH]
    enqueued = 0
    for schedule in due:
        try:
            outcome = fire(schedule, now)
        except Exception:
            # One broken schedule must not starve the others; the claim rolled back.
            logger.exception("schedule %s could not fire; will retry", schedule.name)
            continue
        enqueued += outcome is Outcome.ENQUEUED
    return enqueued


def fire(schedule: Schedule, now: datetime) -> Outcome:
    """Claim the due time read in `schedule.next_run_at` and act on it, in one transaction."""
    due_at = schedule.next_run_at
    fire_at = due_at if now - due_at <= MISFIRE_GRACE else max(
        due_at, last_run_at_or_before(schedule.cron, schedule.time_zone, now)
    )
    following = next_run_after(schedule.cron, schedule.time_zone, now)
    with transaction.atomic():
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
    with transaction.atomic():
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
        with transaction.atomic():
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


# --- built-in maintenance -----------------------------------------------------------


@dataclass(frozen=True)
class Builtin:
    name: str
    task_name: str
    cron: str
    time_zone: str = "UTC"


# Installed by `manage.py install_schedules`; listed in docs/schedules.md.
BUILTINS: tuple[Builtin, ...] = (
    Builtin("jobs.purge_finished", "jobs.purge_finished", "30 3 * * *"),
    Builtin("jobs.dead_letter_alert", "jobs.dead_letter_alert", "15 * * * *"),
)


def install_builtins(reset: bool = False) -> dict[str, str]:
    """Create the built-in schedules that are missing; with reset, restore their defaults.

    Existing rows are otherwise left alone: an operator may have disabled one
    or moved its time.
    """
    done: dict[str, str] = {}
    for b in BUILTINS:
        defaults = {"task_name": b.task_name, "cron": b.cron, "time_zone": b.time_zone,
                    "args": [], "kwargs": {}, "enabled": True}
        schedule = Schedule.objects.filter(name=b.name).first()
        if schedule is None:
            create_schedule(b.name, **defaults)
            done[b.name] = "created"
        elif reset:
            for field, value in defaults.items():
                setattr(schedule, field, value)
            schedule.save()
            done[b.name] = "reset"
        else:
            done[b.name] = "exists"
    return done


def purge_finished(days: int | None = None, now: datetime | None = None,
                   batch_size: int = PURGE_BATCH) -> int:
    """Delete terminal jobs finished more than `days` ago, batch by batch; return the count.

    Each batch is its own short transaction, so a large backlog never holds
    locks for long and progress survives a timeout. Dead jobs with an open
    dead letter are kept: an operator still has to look at them. A job's
    attempts, dead letters and operation keys go with it.
    """
    days = conf.get().retention_days if days is None else days
    if days < 1:
        raise ValueError(f"retention must be at least 1 day, got {days}")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    terminal = list(JobStatus.terminal())
    old = (
        Job.objects.filter(status__in=terminal, finished_at__lt=cutoff)
        .exclude(pk__in=DeadLetter.objects.filter(resolved_at__isnull=True).values("job_id"))
        .order_by("pk")
    )
    deleted = 0
    while True:
        pks = list(old.values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        with transaction.atomic():
            OperationKey.objects.filter(job_id__in=pks).delete()
            # Status again: a job requeued since the select stays.
            _, per_model = Job.objects.filter(pk__in=pks, status__in=terminal).delete()
        deleted += per_model.get(Job._meta.label, 0)
        logger.info("purged %s finished jobs older than %s days", deleted, days)


def alert_dead_letters(hours: float | None = None, now: datetime | None = None) -> int:
    """Mail the site admins about unresolved dead letters older than `hours`, once a day.

    Returns how many were found. Call inside a transaction (the task is atomic):
    the day's operation key commits with the run, so a second run that day
    only logs. A mail is never held back by a failed run: the key rolls back.
    """
    from django.conf import settings
    from django.core.mail import mail_admins

    from jobs.effects import once

    hours = conf.get().dead_letter_alert_hours if hours is None else hours
    now = now or timezone.now()
    stale = DeadLetter.objects.filter(
        resolved_at__isnull=True, failed_at__lt=now - timedelta(hours=hours)
    ).select_related("job")
    count = stale.count()
    if not count:
        return 0
    logger.warning("%s unresolved dead letters are older than %s hours", count, hours)
    if not settings.ADMINS:
        logger.warning("no ADMINS configured: the dead-letter alert mail was not sent")
        return count
    if once(f"dead-letter-alert:{timezone.localdate(now).isoformat()}"):
        lines = [f"- {d.job.task_name} {d.job_id}: {d.error_class}: {d.error_message[:200]}"
                 for d in stale[:50]]
        mail_admins(
            f"{count} unresolved dead-lettered jobs older than {hours} hours",
            "These jobs are dead and nobody has resolved them yet:\n\n" + "\n".join(lines)
            + ("\n..." if count > 50 else "")
            + "\n\nResolve or requeue them in the admin (Jobs > Dead letters).",
        )
    return count
