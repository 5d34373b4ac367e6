"""The cluster registry: which clusters run, where, with which workers."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from jobs.models.base import EngineModel


class Cluster(EngineModel):
    """One `qcluster` process from its start to its stop, refreshed while it lives.

    The row says what the cluster said of itself the last time it spoke; whether it
    is still alive is read from `last_seen_at` (see jobs.worker.clusters).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list)
    workers = models.PositiveIntegerField()
    # The processes under the cluster (workers, pusher, monitor), whose "host:pid"
    # a running job's lease_owner names.
    pids = models.JSONField(default=list)
    # Which of them are workers, as the cluster's sentinel says (empty until it has).
    worker_pids = models.JSONField(default=list, db_default=[])
    jobs_in_hand = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-last_seen_at"], name="cluster_last_seen_idx")]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}:{self.pid}"
