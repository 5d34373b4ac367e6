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
import uuid
from datetime import datetime, timedelta
from uuid import UUID

from django.db import Error as DatabaseError
from django.db.models import QuerySet
from django.utils import timezone

from jobs import conf
from jobs.database import connection
from jobs.models import Attempt, AttemptStatus, Cluster

logger = logging.getLogger("jobs.clusters")

MISSED_REFRESHES = 3  # then a cluster is gone
KEEP_GONE_FOR = timedelta(days=1)  # then its row is deleted
# The running cluster's id (Cluster.id), for the processes it starts: they inherit it.
CLUSTER_ID_ENV = "JOBS_CLUSTER_INSTANCE_ID"


def current_cluster_id() -> UUID | None:
    """The id of the cluster this process belongs to, if it runs under one."""
    value = os.environ.get(CLUSTER_ID_ENV)
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


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
    are started: they must not inherit the main process's connection).

    Its id is drawn here, before the children start, and handed down to them in the
    environment (CLUSTER_ID_ENV): host and pid repeat across containers (same host
    name, pid 1...), so the row, the attempts and the sentinel's report are matched
    by this id, never by host and pid."""

    def __init__(self, name: str, queues: list[str], workers: int) -> None:
        self.name, self.queues, self.workers = name, list(queues), workers
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.id = uuid.uuid4()
        os.environ[CLUSTER_ID_ENV] = str(self.id)
        self.row: Cluster | None = None

    def refresh(self, pids: list[int]) -> None:
        """Say we are alive, with our processes and the jobs they run. Never raises:
        the database being away is the reaper's business, not a reason to stop."""
        now = timezone.now()
        try:
            # A running attempt is its job's current one (every transition closes it).
            held = Attempt.objects.filter(status=AttemptStatus.RUNNING,
                                          worker_cluster=self.id).count()
            if self.row is None:
                self.row = Cluster.objects.create(
                    id=self.id, name=self.name, host=self.host, pid=self.pid, queues=self.queues,
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


def record_worker_pids(cluster_id: UUID, worker_pids: list[int]) -> bool:
    """Store which processes of the cluster `cluster_id` are its workers.

    Called from the cluster's sentinel process, which alone knows; True once its
    row held them (the row may not exist yet in the cluster's first second).
    Never raises, and holds no connection afterwards: the sentinel must not take a
    connection slot that a worker's heartbeat may need.
    """
    try:
        return bool(Cluster.objects.filter(pk=cluster_id, stopped_at__isnull=True)
                    .update(worker_pids=sorted(worker_pids)))
    except DatabaseError as exc:
        logger.debug("could not record this cluster's worker pids (%s)", exc)
        return False
    finally:
        connection.close()
