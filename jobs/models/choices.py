"""Every status and policy as `TextChoices`: the vocabulary of the other layers."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Waiting to retry"
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def terminal(cls) -> frozenset[JobStatus]:
        return frozenset({cls.SUCCEEDED, cls.DEAD, cls.CANCELLED})

    @classmethod
    def runnable(cls) -> frozenset[JobStatus]:
        return frozenset({cls.QUEUED, cls.RETRYING})

    @property
    def is_terminal(self) -> bool:
        return self in JobStatus.terminal()


class AttemptStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    LOST = "lost", "Lost (worker died)"
    INTERRUPTED = "interrupted", "Interrupted (shutdown)"
    CANCELLED = "cancelled", "Cancelled"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip a run while the previous job is unfinished"
    ALLOW = "allow", "Allow overlapping runs"


class MisfirePolicy(models.TextChoices):
    RUN_ONCE = "run_once", "Run once to catch up"
    SKIP = "skip", "Skip to the next future time"


RUNNABLE_STATUSES = [JobStatus.QUEUED, JobStatus.RETRYING]
