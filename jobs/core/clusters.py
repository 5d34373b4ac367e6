"""The cluster registry: each cluster says where it runs and what it holds, every
JOBS['CLUSTER_REFRESH_SECONDS']; whoever reads it decides alive or gone the same way.

A cluster that stops cleanly marks its row stopped; one that is killed simply
falls silent and is shown as gone once three refreshes are missing. Rows are
deleted a day after they were last seen (by any live cluster's refresh).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from django.db import Error as DatabaseError
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from jobs import conf
from jobs.models import Cluster, Job, JobStatus

logger = logging.getLogger("jobs.clusters")

MISSED_REFRESHES = 3  # then a cluster is gone
KEEP_GONE_FOR = timedelta(days=1)  # then its row is deleted


def gone_after() -> timedelta:
    return timedelta(seconds=conf.get().cluster_refresh_seconds * MISSED_REFRESHES)


def alive(now: datetime | None = None) -> QuerySet[Cluster]:
    """Clusters that refreshed their row lately and did not stop."""
    now = now or timezone.now()
    return Cluster.objects.filter(stopped_at__isnull=True, last_seen_at__gte=now - gone_after())


def is_alive(cluster: Cluster, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return cluster.stopped_at is None and cluster.last_seen_at >= now - gone_after()


class Registration:
    """This cluster's row, written from its main process (never before its children
    are started: they must not inherit the main process's connection)."""

    def __init__(self, name: str, queues: list[str], workers: int) -> None:
        self.name, self.queues, self.workers = name, list(queues), workers
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.row: Cluster | None = None

    def refresh(self, pids: list[int]) -> None:
        """Say we are alive, with our processes and the jobs they run. Never raises:
        the database being away is the reaper's business, not a reason to stop."""
        now = timezone.now()
        owners = [f"{self.host}:{pid}" for pid in pids]
        try:
            held = Job.objects.filter(status=JobStatus.RUNNING, lease_owner__in=owners).count()
            if self.row is None:
                self.row = Cluster.objects.create(
                    name=self.name, host=self.host, pid=self.pid, queues=self.queues,
                    workers=self.workers, pids=pids, jobs_in_hand=held, started_at=now,
                    last_seen_at=now)
            else:
                Cluster.objects.filter(pk=self.row.pk).update(
                    pids=pids, jobs_in_hand=held, last_seen_at=now)
            Cluster.objects.filter(last_seen_at__lt=now - KEEP_GONE_FOR).delete()
        except DatabaseError as exc:
            logger.warning("could not refresh the cluster registry (%s); retrying", exc)
            connection.close()

    def stopped(self) -> None:
        if self.row is None:
            return
        try:
            Cluster.objects.filter(pk=self.row.pk).update(stopped_at=timezone.now())
        except DatabaseError as exc:
            logger.warning("could not mark this cluster stopped (%s)", exc)


def record_worker_pids(host: str, main_pid: int, worker_pids: list[int]) -> bool:
    """Store which processes of the cluster `host:main_pid` are its workers.

    Called from the cluster's sentinel process, which alone knows; True once its
    row held them (the row may not exist yet in the cluster's first second).
    Never raises, and holds no connection afterwards: the sentinel must not take a
    connection slot that a worker's heartbeat may need.
    """
    try:
        return bool(Cluster.objects.filter(host=host, pid=main_pid, stopped_at__isnull=True)
                    .update(worker_pids=sorted(worker_pids)))
    except DatabaseError as exc:
        logger.debug("could not record this cluster's worker pids (%s)", exc)
        return False
    finally:
        connection.close()
