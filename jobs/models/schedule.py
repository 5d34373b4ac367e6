"""Schedules: a registered task, a cron expression and an IANA time zone."""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.base import EngineModel
from jobs.models.choices import MisfirePolicy, OverlapPolicy
from jobs.models.job import Job

MAX_JITTER_SECONDS = 7 * 24 * 3600


class Schedule(EngineModel):
    """A registered task enqueued at the times of a cron expression in an IANA time zone.

    Every cluster's maintenance thread fires due schedules
    (`jobs.scheduling.firing.fire_due`); `next_run_at` is both the next due time
    and the claim token: firing moves it forward with one conditional UPDATE, so
    only one cluster fires each due time. Every save is validated and planned by
    `jobs.scheduling.firing` (a `pre_save` receiver): a schedule that could never
    enqueue a job must not exist. The model itself knows no cron or task registry.
    """

    name = models.CharField(max_length=100, unique=True)
    task_name = models.CharField(max_length=200, help_text="A registered task (see @task).")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    cron = models.CharField(
        max_length=100,
        help_text='Five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *".',
    )
    time_zone = models.CharField(
        max_length=64, help_text='IANA name the expression is read in, e.g. "Europe/Berlin".'
    )
    enabled = models.BooleanField(default=True)
    overlap_policy = models.CharField(
        max_length=16, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    misfire_policy = models.CharField(
        max_length=16, choices=MisfirePolicy.choices, default=MisfirePolicy.RUN_ONCE
    )
    # Bounded here, not by the database: SQLite enforces no integer range, so without
    # it a jitter of 10^11 s would be saved there and refused on PostgreSQL.
    jitter_seconds = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(MAX_JITTER_SECONDS)],
        help_text="Delay each job by a random 0..N seconds (spreads load; at most a week)."
    )

    # Firing state, written by jobs.scheduling only (UTC, aware).
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [
            # What fire_due asks every tick: enabled schedules that are due.
            models.Index(
                fields=["next_run_at"], name="schedule_due_idx", condition=Q(enabled=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron} {self.time_zone})"
