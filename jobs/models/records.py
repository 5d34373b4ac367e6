"""What outlives an attempt: operation keys (effects done) and dead letters (failures to triage)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.base import EngineModel
from jobs.models.job import Attempt, Job


class OperationKey(EngineModel):
    """A business operation that committed, recorded in the same transaction as its writes.

    See `jobs.effects.once`: a re-run after a crash finds the key and skips the effect.
    """

    key = models.CharField(max_length=255, unique=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="operation_keys")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class DeadLetter(EngineModel):
    """A job that failed for good, waiting for an operator. Its error is not copied here:
    it points at the attempt that failed last, where error and traceback are stored once."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dead_letters")
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-failed_at"]
        permissions = [("resolve_deadletter", "Can resolve dead letters")]
        constraints = [
            # A job has at most one open dead letter; history keeps the rest.
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(resolved_at__isnull=True),
                name="deadletter_one_open_per_job",
            ),
        ]
        indexes = [
            models.Index(fields=["resolved_at", "-failed_at"], name="deadletter_open_idx"),
            # The admin's triage order: unresolved first (DESC puts NULLs first on
            # PostgreSQL), newest failure first, then the primary key it adds.
            models.Index(fields=["-resolved_at", "-failed_at", "-id"],
                         name="deadletter_triage_idx"),
        ]

    def __str__(self) -> str:
        return f"dead letter for {self.job_id}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None

    # The final error, read from the attempt (select_related("attempt") on lists).
    @property
    def error_class(self) -> str:
        return self.attempt.error_class if self.attempt else ""

    @property
    def error_message(self) -> str:
        return self.attempt.error_message if self.attempt else ""

    @property
    def traceback(self) -> str:
        return self.attempt.traceback if self.attempt else ""
