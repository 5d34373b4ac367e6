"""Jobs, their attempts and their steps: the `Job` row *is* the queue.

Nothing here changes a status: every status change goes through
`jobs.core.transitions`, as one guarded UPDATE.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.base import EngineModel
from jobs.models.choices import RUNNABLE_STATUSES, AttemptStatus, JobStatus, StepStatus
from jobs.models.ids import tail, uuid7

# The broker names this index on SQLite, which has no statistics to choose it by.
DUE_INDEX = "job_due_idx"


class Job(EngineModel):
    # Time-ordered (jobs.models.ids): recent jobs' index entries stay together.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=64, default="default")
    # Higher runs first among jobs that are due.
    priority = models.SmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)

    # Tries in the current cycle (a requeue starts a new cycle; history stays).
    attempt_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    # Numbers Attempt rows across cycles; also identifies the attempt that
    # currently owns the job, so a stale worker cannot finish it.
    last_attempt_number = models.PositiveIntegerField(default=0)

    run_after = models.DateTimeField(default=timezone.now)
    # Soft reservation by a cluster's pusher between dequeue and claim; the
    # status stays queued, so a dead cluster's reservations simply expire.
    reserved_until = models.DateTimeField(null=True, blank=True)
    # Who runs the job now ("host:pid") and until when the lease holds.
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    # Unique where set (see Meta): most jobs have none, and NULL (not "") says so.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    enqueued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # a partial index (Meta): most jobs are enqueued by no one
    )

    # The W3C traceparent of the span that enqueued the job (OpenTelemetry), if any.
    # db_default too: a process of the previous release inserts jobs without it.
    traceparent = models.CharField(max_length=128, blank=True, default="", db_default="")

    result = models.JSONField(null=True, blank=True)
    # A one-line preview of the last failure for lists ("ValueError: bad row 7…"); the
    # full message and traceback are stored once, on the attempt.
    last_error = models.CharField(max_length=300, blank=True, default="")
    # What the last failure was about, with what varies per job taken out
    # (jobs.core.causes): the key that groups failures. db_default: see traceparent.
    failure_cause = models.CharField(max_length=300, blank=True, default="", db_default="")
    last_failed_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("requeue_job", "Can requeue dead or cancelled jobs"),
            ("cancel_job", "Can cancel queued or running jobs"),
            ("resume_job", "Can resume jobs from their failed step"),
        ]
        # Every status change rewrites the row with an entry in each index whose
        # predicate it meets, so indexes over columns most rows leave empty are
        # partial: they cost nothing for the rows they do not cover.
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="job_idempotency_key_uniq",
                                    condition=Q(idempotency_key__isnull=False)),
        ]
        indexes = [
            # What the broker asks: due runnable jobs of a queue, best first.
            models.Index(
                "queue",
                models.F("priority").desc(),
                "run_after",
                name=DUE_INDEX,
                condition=Q(status__in=RUNNABLE_STATUSES),
            ),
            # The other half of it: the longest-due jobs, whatever their priority
            # (aging and the oldest-first share, see jobs.worker.reservation).
            models.Index(
                "queue",
                "run_after",
                name="job_due_age_idx",
                condition=Q(status__in=RUNNABLE_STATUSES),
            ),
            # What the reaper asks: running jobs whose lease ran out.
            models.Index(
                fields=["lease_expires_at"],
                name="job_lease_idx",
                condition=Q(status=JobStatus.RUNNING),
            ),
            # What operators filter by, newest first.
            models.Index(fields=["status", "-created_at"], name="job_status_created_idx"),
            models.Index(fields=["queue", "-created_at"], name="job_queue_created_idx"),
            models.Index(fields=["task_name", "-created_at"], name="job_task_created_idx"),
            models.Index(fields=["-created_at"], name="job_created_idx"),
            # Failures grouped by task and cause, first and last seen (jobs.ops.failures):
            # only the jobs failing now, however many succeeded.
            models.Index(fields=["task_name", "failure_cause", "last_failed_at"],
                         name="job_failure_idx",
                         condition=Q(status__in=[JobStatus.DEAD, JobStatus.RETRYING])),
            # Search by what the lists show of an id: its random last digits.
            models.Index(tail(), name="job_id_tail_idx"),
            # The throughput chart: jobs finished in the last hour.
            models.Index(fields=["-finished_at"], name="job_finished_idx",
                         condition=Q(finished_at__isnull=False)),
            # Deleting a user clears their jobs' enqueued_by.
            models.Index(fields=["enqueued_by"], name="job_enqueued_by_idx",
                         condition=Q(enqueued_by__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.status}] {self.id}"

    @property
    def is_terminal(self) -> bool:
        return JobStatus(self.status).is_terminal


class Attempt(EngineModel):
    # Looked up through attempt_unique_number (job, number), which it leads.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts",
                            db_index=False)
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.RUNNING
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    # When the next try was scheduled, if this failure led to a retry.
    retry_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True, default="")
    worker_pid = models.IntegerField(null=True, blank=True)
    # Who ran it beyond host and pid, which repeat across containers (same host name,
    # pid 1...): the worker process's own id, drawn when it spawned, and its cluster's
    # (Cluster.id; a value, not a relation: cluster rows are deleted after a day).
    worker_id = models.UUIDField(null=True, blank=True)
    worker_cluster = models.UUIDField(null=True, blank=True)
    error_class = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    # The step this attempt was in when it ended, if the job has steps.
    step = models.ForeignKey("Step", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="job_attempts", db_index=False)

    class Meta:
        # By the column, not the relation: "job" would JOIN jobs_job for its ordering.
        ordering = ["job_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="attempt_unique_number"),
        ]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="attempt_status_started_idx"),
            # Only the attempts of jobs with steps have one (see Job.Meta on partial indexes).
            models.Index(fields=["step"], name="attempt_step_idx",
                         condition=Q(step__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.job_id} [{self.status}]"

    @property
    def worker(self) -> str:
        """Host and pid, then the first digits of the worker's id: "web:1 (3f2a9c1d)"."""
        if not self.worker_host:
            return ""
        named = f"{self.worker_host}:{self.worker_pid}"
        return f"{named} ({self.worker_id.hex[:8]})" if self.worker_id else named


class Step(EngineModel):
    """One checkpointed part of a job. A succeeded step is never run again for
    that job (until an operator requeues it from scratch); its stored result
    is returned instead."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=StepStatus.choices,
                              default=StepStatus.PENDING)
    result = models.JSONField(null=True, blank=True)
    error_class = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    # The job attempt (Attempt.number) that last started this step: the fence
    # that lets only the attempt owning the job write the step's status.
    attempt_number = models.PositiveIntegerField(null=True, blank=True)
    max_attempts = models.PositiveIntegerField(null=True, blank=True)
    timeout = models.PositiveIntegerField(null=True, blank=True)
    # Settings an operator may raise before resuming (a token or size limit),
    # merged over the defaults the code passes to ctx.step(limits=...).
    limits = models.JSONField(default=dict, blank=True)
    progress_current = models.PositiveBigIntegerField(null=True, blank=True)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    progress_message = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="step_unique_name_per_job"),
        ]
        indexes = [models.Index(fields=["job", "position"], name="step_job_position_idx")]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def progress_fraction(self) -> float | None:
        if self.progress_total:
            return min(1.0, (self.progress_current or 0) / self.progress_total)
        return None
