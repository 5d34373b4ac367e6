"""Built-in maintenance schedules: purge old finished jobs, alert on old dead letters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.utils import timezone

from jobs import conf, database
from jobs.core.effects import once
from jobs.models import DeadLetter, Job, JobStatus, OperationKey, Schedule
from jobs.scheduling.firing import create_schedule

logger = logging.getLogger("jobs.schedules")

PURGE_BATCH = 1000


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
        with database.atomic():
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
    hours = conf.get().dead_letter_alert_hours if hours is None else hours
    now = now or timezone.now()
    stale = DeadLetter.objects.filter(
        resolved_at__isnull=True, failed_at__lt=now - timedelta(hours=hours)
    ).select_related("job", "attempt")
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
