"""Schedules as the scheduling tests need them: a schedule already due at a fixed time,
the jobs it made, a time in a zone's wall clock. Shared by the cron, firing, command
and admin tests (tests/unit/scheduling, tests/unit/management, tests/ui/admin)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jobs.models import Job, Schedule
from jobs.scheduling.firing import create_schedule

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def make(name="s", task="tests.noop", cron="0 * * * *", tz="UTC", due=T0, **fields):
    """A schedule whose next due time is `due` (as if it had been planned long ago)."""
    schedule = create_schedule(name, task, cron, tz, **fields)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    schedule.refresh_from_db()
    return schedule


def jobs_of(schedule):
    return Job.objects.filter(idempotency_key__startswith=f"schedule:{schedule.pk}:")


def local(when, tz):
    return when.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
