"""Clusters and their workers as the registry (jobs.core.clusters) knows them,
with the job each busy worker runs now.

A worker is named by its lease: a running job's `lease_owner` is the
"host:pid" of the process that claimed it, and the registry lists each
cluster's processes, so two queries tell which cluster runs what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from jobs.core import clusters
from jobs.models import Cluster, Job, JobStatus

SHOW_GONE_FOR = timedelta(hours=1)  # then a gone cluster is hidden (deleted after a day)
MAX_RUNNING = 2000  # running jobs are bounded by workers; this bounds a page all the same


@dataclass
class WorkerView:
    pid: int | str
    job: Job | None  # what it runs now; None when idle


@dataclass
class ClusterView:
    cluster: Cluster
    state: str  # "alive", "stopped" or "gone"
    running: list[Job] = field(default_factory=list)

    @property
    def idle_workers(self) -> int:
        return max(self.cluster.workers - len(self.running), 0)

    @property
    def workers(self) -> list[WorkerView]:
        """Each worker the sentinel reported, busy or idle, then any other process that
        holds a job (a worker respawned since the last report)."""
        by_pid = {job.lease_owner.rpartition(":")[2]: job for job in self.running}
        listed = [WorkerView(pid, by_pid.pop(str(pid), None))
                  for pid in self.cluster.worker_pids or []]
        return listed + [WorkerView(pid, job) for pid, job in by_pid.items()]


@dataclass
class WorkersPage:
    clusters: list[ClusterView]
    # Running jobs no listed cluster holds (a cluster gone longer than shown, or
    # one that never registered): the reaper takes them back when their lease ends.
    orphans: list[Job]
    now: datetime

    @property
    def alive(self) -> int:
        return sum(1 for c in self.clusters if c.state == "alive")


def page(now: datetime | None = None) -> WorkersPage:
    now = now or timezone.now()
    shown = list(Cluster.objects.filter(last_seen_at__gte=now - SHOW_GONE_FOR)
                 .order_by("-started_at"))
    views = [ClusterView(c, _state(c, now)) for c in shown]
    owners: dict[str, ClusterView] = {}
    for view in views:
        for pid in view.cluster.pids or []:
            owners[f"{view.cluster.host}:{pid}"] = view
    orphans: list[Job] = []
    running = (Job.objects.filter(status=JobStatus.RUNNING)
               .only("id", "task_name", "queue", "status", "started_at", "heartbeat_at",
                     "lease_owner", "lease_expires_at", "attempt_count", "max_attempts",
                     "created_at")
               .order_by("started_at")[:MAX_RUNNING])
    for job in running:
        view = owners.get(job.lease_owner)
        (view.running if view else orphans).append(job)
    return WorkersPage(clusters=views, orphans=orphans, now=now)


def _state(cluster: Cluster, now: datetime) -> str:
    if cluster.stopped_at is not None:
        return "stopped"
    return "alive" if clusters.is_alive(cluster, now) else "gone"

