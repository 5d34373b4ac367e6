"""django-q2 pulls from the `Job` table itself: one row per job, no second queue.

`dequeue` reserves due jobs with one statement (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so clusters never wait on each other) and hands the workers only
their ids. The reservation is soft: it keeps other clusters away until a
worker claims the job (`jobs.core.transitions.claim`), and if this cluster dies
first it simply expires, the job still truthfully `queued`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from time import sleep
from uuid import UUID

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from jobs import conf
from jobs.conf import TIMEOUT_GRACE_SECONDS
from jobs.core.registry import get_task
from jobs.exceptions import UnknownTaskError
from jobs.models import Job, JobStatus
from jobs.worker import maintenance
from jobs.worker.runner import execute

logger = logging.getLogger("jobs.broker")


def reserve_due(queue: str, limit: int, *, seconds: float | None = None) -> list[UUID]:
    """Reserve up to `limit` due jobs of `queue`, best first; return their ids."""
    return [pk for pk, _ in _reserve(queue, limit, seconds)]


def _reserve(queue: str, limit: int, seconds: float | None) -> list[tuple[UUID, str]]:
    now = timezone.now()
    seconds = conf.get().reservation_seconds if seconds is None else seconds
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(Job._meta.db_table)
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    # Status literals are inlined (they are constants) so PostgreSQL can match
    # the partial index job_due_idx.
    sql = (
        f"UPDATE {table} SET reserved_until = %s WHERE id IN ("
        f" SELECT id FROM {table}"
        f" WHERE status IN ('{JobStatus.QUEUED.value}', '{JobStatus.RETRYING.value}')"
        "  AND queue = %s AND run_after <= %s"
        "  AND (reserved_until IS NULL OR reserved_until < %s)"
        f" ORDER BY priority DESC, run_after LIMIT %s{skip_locked}"
        ") RETURNING id, priority, run_after, task_name"
    )
    params = [adapt(now + timedelta(seconds=seconds)), queue, adapt(now), adapt(now), limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # RETURNING does not keep the subquery's order; restore best-first.
    rows.sort(key=lambda row: (-row[1], str(row[2])))
    return [(row[0] if isinstance(row[0], UUID) else UUID(row[0]), row[3]) for row in rows]


def package(job_id: UUID, task_name: str = "") -> dict:
    """What travels to a worker: the job id and nothing the Job row does not hold.

    django-q2's own timeout is only the backstop for a worker stuck where our
    timeout cannot reach it (in C code): it kills the worker after the task's
    timeout plus a grace period, and the reaper records the attempt as lost.
    """
    return {
        "timeout": _task_timeout(task_name) + TIMEOUT_GRACE_SECONDS,
        "id": job_id.hex,
        "name": f"job-{job_id}",
        "func": execute,
        "args": (str(job_id),),
        "kwargs": {},
        "save": False,
        "ack_failure": True,
        "started": timezone.now(),
    }


def _task_timeout(task_name: str) -> int:
    try:
        return get_task(task_name).timeout or conf.get().default_timeout
    except UnknownTaskError:
        return conf.get().default_timeout


class JobTableBroker(Broker):
    """A django-q2 broker whose queue is the set of due rows in `jobs_job`.

    A cluster serves the job queue named like the cluster (Q_CLUSTER_NAME).
    """

    def enqueue(self, task):  # noqa: ANN001 - django-q2's signature
        raise NotImplementedError(
            "This cluster runs jobs from the Job table; create them with jobs.enqueue()."
        )

    # Tests that drive the broker in-process turn the maintenance thread off.
    run_maintenance = True

    def dequeue(self):
        if self.run_maintenance:
            maintenance.ensure_started()
        if transaction.get_autocommit():
            # Drop a connection the database closed (restart, failover) before use.
            close_old_connections()
        try:
            reserved = _reserve(self.list_key, Conf.BULK, None)
        except DatabaseError:
            # The database went away: reconnect on the next poll instead of letting
            # django-q2 kill and respawn the pusher after a 10 s pause.
            logger.warning("dequeue failed; reconnecting", exc_info=True)
            connection.close()
            sleep(Conf.POLL)
            return None
        if not reserved:
            sleep(Conf.POLL)
            return None
        return [(str(pk), SignedPackage.dumps(package(pk, name))) for pk, name in reserved]

    def queue_size(self) -> int:
        """Due jobs no cluster has reserved yet."""
        now = timezone.now()
        return (
            Job.objects.filter(
                queue=self.list_key, status__in=JobStatus.runnable(), run_after__lte=now
            )
            .exclude(reserved_until__gte=now)
            .count()
        )

    def lock_size(self) -> int:
        """Jobs reserved by a cluster or running."""
        now = timezone.now()
        return Job.objects.filter(queue=self.list_key).filter(
            Q(status=JobStatus.RUNNING)
            | Q(status__in=JobStatus.runnable(), reserved_until__gte=now)
        ).count()

    def ping(self) -> bool:
        connection.ensure_connection()
        return True

    def info(self) -> str:
        return f"Job table ({connection.vendor})"

    # The Job row is the message: finishing it is the runner's business.
    def acknowledge(self, task_id) -> None:  # noqa: ANN001
        return None

    def fail(self, task_id) -> None:  # noqa: ANN001
        return None

    def delete(self, task_id) -> None:  # noqa: ANN001
        return None

    def purge_queue(self) -> None:
        return None

    def delete_queue(self) -> None:
        return None
