"""What operators did and decided: paused queues and the audit log of their actions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.base import EngineModel


class QueuePause(EngineModel):
    """A paused queue: clusters neither reserve nor claim its jobs while this row exists.

    Jobs that already run finish; resuming deletes the row (the audit log keeps
    who paused and resumed, and when).
    """

    queue = models.CharField(max_length=64, unique=True)
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["queue"]
        permissions = [("pause_queue", "Can pause and resume queues")]

    def __str__(self) -> str:
        return f"{self.queue} (paused)"


class OperationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    # Its job was cancelled: it stopped after its last committed batch.
    CANCELLED = "cancelled", "Cancelled"


class OperatorAction(EngineModel):
    """One thing an operator did, as the audit log shows it; for an action over every
    job matching a filter, also its progress while a job of its own carries it out.

    The counts are what really happened: `done` jobs changed, `skipped` jobs
    matched but could not be changed, with the reasons in `skipped_reasons`.
    """

    action = models.CharField(max_length=32)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    # Kept as written: the audit log must still name a user who was deleted since.
    username = models.CharField(max_length=150, blank=True, default="")
    # What it was applied to: {"ids": [...]} for a selection, the filter for "all
    # matching", {"queue": name} for a pause.
    target = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=OperationStatus.choices,
                              default=OperationStatus.DONE)
    matched = models.PositiveIntegerField(null=True, blank=True)  # known once counted
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    skipped_reasons = models.JSONField(default=dict, blank=True)
    # Keyset position of a background run (the last job id handled), so a retry
    # after a crash continues where the committed progress ends.
    cursor = models.CharField(max_length=64, blank=True, default="")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+", db_index=False)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="action_created_idx")]

    def __str__(self) -> str:
        return f"{self.action} by {self.username or 'system'} at {self.created_at:%Y-%m-%d %H:%M}"


class OperationTarget(EngineModel):
    """One job an every-match operation acts on, written once when the operation begins.

    The set is fixed then, so the operation acts on exactly the jobs that
    matched when it was asked for: a job that starts matching while it runs
    (a retry that went dead meanwhile) is not swept in, and done + skipped
    always adds up to `matched`. A plain id, not a foreign key, so purging
    old jobs never waits on an operation; a target whose job is gone by the
    time its batch runs is reported as not found.
    """

    operation = models.ForeignKey(OperatorAction, on_delete=models.CASCADE, related_name="+",
                                  db_index=False)
    job_id = models.UUIDField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["operation", "job_id"],
                                               name="operation_target_uniq")]

    def __str__(self) -> str:
        return f"{self.job_id} of operation {self.operation_id}"
