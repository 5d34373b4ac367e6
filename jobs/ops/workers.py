"""Clusters and their workers as the registry (jobs.core.clusters) knows them,
with the job each busy worker runs now.

A running job's current attempt names the worker that claimed it: host and
pid, the worker's own id (drawn when it spawned) and its cluster's id. Host and
pid repeat across containers (same host name, pid 1...), so a job is matched to
its cluster by the cluster's id, and to a worker by pid only within that
cluster; two queries tell which cluster runs what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from jobs.core import clusters
from jobs.models import Attempt, Cluster, Job, JobStatus

SHOW_GONE_FOR = timedelta(hours=1)  # then a gone cluster is hidden (deleted after a day)
MAX_RUNNING = 2000  # running jobs are bounded by workers; this bounds a page all the same


@dataclass
class WorkerView:
    pid: int | str
    job: Job | None  # what it holds now; None when idle (or gone)
    cluster_state: str = "alive"  # its cluster's: "alive", "stopped" or "gone"

    @property
    def state(self) -> str:
        """"running" with a job; else "idle" only while its cluster lives: a gone or
        stopped cluster's worker is not waiting for work, it is gone or stopped too."""
        if self.job is not None:
            return "running"
        return "idle" if self.cluster_state == "alive" else self.cluster_state

    @property
    def state_label(self) -> str:
        return {"running": "Running", "idle": "Idle", "gone": "Gone",
                "stopped": "Stopped"}[self.state]

    @property
    def worker_id(self) -> str:
        """The worker's id as the attempt it runs recorded it (unknown while idle)."""
        return worker_id_of(self.job) if self.job is not None else ""


def worker_id_of(job: Job) -> str:
    """The id of the worker that runs `job` (annotated by `page`), "" if unknown."""
    value = getattr(job, "worker_id", None)
    return str(value) if value else ""


@dataclass
class ClusterView:
    cluster: Cluster
    state: str  # "alive", "stopped" or "gone"
    running: list[Job] = field(default_factory=list)

    @property
    def idle_workers(self) -> int:
        """Workers waiting for a job: none in a cluster that is gone or stopped."""
        if self.state != "alive":
            return 0
        return max(self.cluster.workers - len(self.running), 0)

    @property
    def workers(self) -> list[WorkerView]:
        """Each worker the sentinel reported, busy or idle, then any other process that
        holds a job (a worker respawned since the last report)."""
        by_pid = {job.lease_owner.rpartition(":")[2]: job for job in self.running}
        listed = [WorkerView(pid, by_pid.pop(str(pid), None), self.state)
                  for pid in self.cluster.worker_pids or []]
        return listed + [WorkerView(pid, job, self.state) for pid, job in by_pid.items()]


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
    by_id = {str(view.cluster.id): view for view in views}
    # Attempts written before workers had ids (a previous release) have no cluster id:
    # matched by "host:pid", but only where a single shown cluster lists it.
    by_owner: dict[str, ClusterView | None] = {}
    for view in views:
        for pid in view.cluster.pids or []:
            owner = f"{view.cluster.host}:{pid}"
            by_owner[owner] = None if owner in by_owner else view
    current = Attempt.objects.filter(job_id=OuterRef("pk"), number=OuterRef("last_attempt_number"))
    orphans: list[Job] = []
    running = (Job.objects.filter(status=JobStatus.RUNNING)
               .only("id", "task_name", "queue", "status", "started_at", "heartbeat_at",
                     "lease_owner", "lease_expires_at", "attempt_count", "max_attempts",
                     "last_attempt_number", "created_at")
               .annotate(worker_id=Subquery(current.values("worker_id")[:1]),
                         worker_cluster=Subquery(current.values("worker_cluster")[:1]))
               .order_by("started_at")[:MAX_RUNNING])
    for job in running:
        if job.worker_cluster:
            view = by_id.get(str(job.worker_cluster))
        else:
            view = by_owner.get(job.lease_owner)
        (view.running if view else orphans).append(job)
    return WorkersPage(clusters=views, orphans=orphans, now=now)


def _state(cluster: Cluster, now: datetime) -> str:
    if cluster.stopped_at is not None:
        return "stopped"
    return "alive" if clusters.is_alive(cluster, now) else "gone"

