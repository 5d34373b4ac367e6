"""django-q2 pulls from the `Job` table itself: one row per job, no second queue.

`dequeue` reserves due jobs with one statement (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so clusters never wait on each other) and hands the workers only
their ids. The reservation is soft: it keeps other clusters away until a
worker claims the job (`jobs.core.transitions.claim`), and if this cluster dies
first it simply expires, the job still truthfully `queued`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from time import sleep
from uuid import UUID

from django.db import Error as DatabaseErrors
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from jobs import conf, database, dialect
from jobs.conf import TIMEOUT_GRACE_SECONDS
from jobs.core import clusters, figures, reservations
from jobs.core.clock import DatabaseNow
from jobs.core.registry import get_task
from jobs.database import connection
from jobs.exceptions import UnknownTaskError
from jobs.models import Job, JobStatus
from jobs.worker import connections, maintenance
from jobs.worker.reservation import oldest_share, reservation_size, reserve
from jobs.worker.runner import DRAIN_SIGNAL, run_job
from jobs.worker.wakeup import Listener

logger = logging.getLogger("jobs.broker")


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
        "func": execute_handed_over,
        "args": (str(job_id),),
        "kwargs": {},
        "save": False,
        "ack_failure": True,
        "started": timezone.now(),
    }


def execute_handed_over(job_id: str) -> None:
    """django-q2's entry point for a job this broker handed over. Never raises.

    Whatever the task does ends in a recorded outcome (`jobs.worker.runner`); what
    reaches here is a claim or an outcome write that failed (the database away, a
    pooler refusing a statement). A job the claim did not take is still `queued`
    and reserved for this cluster: it is given back at once (its reservation
    cleared), not left to its reservation's expiry and handed over again after
    it, maybe to fail the same way. A job the claim took is `running`: the
    reaper settles it when its lease lapses, and retries it.
    """
    try:
        run_job(job_id)
    except Exception:
        logger.exception("job %s: its claim or its outcome could not be written; "
                         "giving it back", job_id)
        give_back(job_id)


def give_back(job_id: str) -> None:
    """Make a handed-over, unclaimed job claimable again by every cluster, now, on a new
    connection (whatever failed may have left the old one in a state of its own)."""
    connection.close()
    try:
        reservations.release(job_id)
    except DatabaseErrors:
        logger.warning("job %s could not be given back; it is taken again when its "
                       "reservation expires", job_id, exc_info=True)
        connection.close()


def _task_timeout(task_name: str) -> int:
    try:
        return get_task(task_name).timeout or conf.get().default_timeout
    except UnknownTaskError:
        return conf.get().default_timeout


class _Stopping(Exception):  # noqa: N818 - not an error: the pusher's wait is over
    """Raised into the pusher's idle wait by the cluster's drain signal."""


class _PusherStop:
    """The pusher's side of the cluster's shutdown (jobs/management/commands/qcluster.py).

    The cluster's main process sends every process of the cluster DRAIN_SIGNAL first.
    django-q2's pusher looks at its stop event only between two `dequeue` calls, and
    an idle one waits up to JOBS['LISTEN_FALLBACK_SECONDS'] (1 s) for a notification:
    that was most of an idle cluster's time to exit. Here the signal ends the wait at
    once (raised into it, and only into it: nothing else the pusher does is cut
    short), and every later `dequeue` reserves nothing, so no job is handed to the
    draining workers.
    """

    requested = False
    waiting = False  # in the idle wait, where the signal may raise
    installed = False

    def install(self) -> None:
        """In the pusher: answer the drain signal, which its parent made it ignore. Only
        in a cluster's process (the signal ignored) and its main thread."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        self.installed = True
        if signal.getsignal(DRAIN_SIGNAL) == signal.SIG_IGN:
            signal.signal(DRAIN_SIGNAL, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.waiting:
            self.waiting = False
            raise _Stopping()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """The idle wait: the drain signal ends it by raising _Stopping."""
        if self.requested:
            raise _Stopping()
        self.waiting = True
        try:
            yield
        finally:
            self.waiting = False


_stop = _PusherStop()
# While stopping, how long `dequeue` waits before it answers nothing (django-q2's pusher
# calls it in a loop until the sentinel tells it to stop).
STOPPING_PAUSE = 0.01


class JobTableBroker(Broker):
    """A django-q2 broker whose queue is the set of due rows in `jobs_job`.

    It serves the job queues it is given (`qcluster --queues`, see that
    command), or JOBS['QUEUES'], or the default queue. Its pusher counts the jobs
    it reserves, for the share of them taken longest-due first
    (`jobs.worker.reservation`).
    """

    def __init__(self, list_key: str | None = None, queues: list[str] | None = None) -> None:
        super().__init__(list_key=list_key)
        self.queues = list(queues or conf.get().served_queues())
        self._listener: Listener | None = None  # opened in the pusher, on first idle
        self._reserved = 0

    # django-q2 pickles the broker into the cluster's processes (spawn start method).
    def __getstate__(self) -> tuple:
        return self.list_key, self._info, self.queues

    def __setstate__(self, state: tuple) -> None:
        self.list_key, self._info, self.queues = state
        self.connection = self.get_connection(self.list_key)
        self._listener = None
        self._reserved = 0

    def enqueue(self, task):  # noqa: ANN001 - django-q2's signature
        raise NotImplementedError(
            "This cluster runs jobs from the Job table; create them with jobs.enqueue()."
        )

    # Tests that drive the broker in-process turn the maintenance thread off.
    run_maintenance = True
    # (when the first poll failed, how many failed) while the database is away.
    _outage: tuple[float, int] | None = None

    def _poll_failed(self) -> None:
        """One warning with its traceback per outage, not one per poll (a restart made
        380 tracebacks); the count is said when the database answers again."""
        if self._outage is None:
            self._outage = (time.monotonic(), 1)
            logger.warning("dequeue failed; reconnecting at every poll until the database "
                           "answers", exc_info=True)
        else:
            self._outage = (self._outage[0], self._outage[1] + 1)
            logger.debug("dequeue failed again (%s polls)", self._outage[1], exc_info=True)

    def dequeue(self):
        if _stop.requested:
            sleep(STOPPING_PAUSE)
            return None
        if self.run_maintenance:
            maintenance.ensure_started()
            _stop.install()
        try:
            if database.get_autocommit():
                # Drop a connection the database closed (restart, failover) before use;
                # one that answered moments ago is trusted (a failure lands below).
                close_old_connections()
                connections.skip_health_check_if_fresh()
            limit = reservation_size()
            reserved = reserve(self.queues, limit, None, oldest_share(self._reserved, limit))
            self._reserved += len(reserved)
            connections.answered()
        except DatabaseErrors:
            # The database went away: reconnect on the next poll instead of letting
            # django-q2 kill and respawn the pusher after a 10 s pause.
            self._poll_failed()
            connection.close()
            sleep(Conf.POLL)
            return None
        if self._outage is not None:
            began, failures = self._outage
            self._outage = None
            logger.warning("the database answers again: %s polls failed over %.1f s",
                           failures, time.monotonic() - began)
        reserved = reserved or self._idle()
        if not reserved:
            return None
        return [(str(pk), SignedPackage.dumps(package(pk, name))) for pk, name in reserved]

    def _idle(self) -> list[tuple[UUID, str]]:
        """Nothing due: wait for a notification on PostgreSQL (jobs.worker.wakeup), else poll.

        Returns the jobs heard of while waiting, to hand to workers without reserving
        them first (an idle cluster has nothing that ranks before them); empty: reserve.
        Until a worker claims it, such a job is still queued, and the next reservation
        may hand it over again: the claim gives it to one worker, the other's claim
        changes nothing (a statement lost now and then, on a cluster that was idle).
        """
        try:
            if not Listener.available():
                with _stop.interruptible():
                    sleep(Conf.POLL)
                return []
            if self._listener is None:
                self._listener = Listener(self.queues)
            with _stop.interruptible():
                heard = self._listener.wait(Conf.POLL, limit=reservation_size())
        except _Stopping:
            # Cut short anywhere in the wait: the listening connection is not reused.
            if self._listener is not None:
                self._listener.close()
            return []
        self._listener.woke_due()
        return [(UUID(pk), name) for pk, name in heard]

    # django-q2's sentinel reports its processes through the broker's stats every
    # guard cycle; the pids of its workers go to this cluster's registry row, once
    # and again only when they change (a worker respawned), for the workers page.
    _recorded_workers: tuple[int, ...] = ()

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        super().set_stat(key, value, timeout)
        try:
            stat = SignedPackage.loads(value)
            workers = tuple(sorted(pid for pid in stat.workers if pid))
        except Exception:  # noqa: BLE001 - a stat we cannot read only costs the listing
            return
        cluster_id = clusters.current_cluster_id()  # not host and pid: those repeat
        if (workers and workers != self._recorded_workers and cluster_id is not None
                and clusters.record_worker_pids(cluster_id, list(workers))):
            self._recorded_workers = workers

    def queue_size(self) -> int:
        """Due jobs no cluster has reserved yet (by the database's clock)."""
        return figures.depth(self.queues, unreserved=True)

    def lock_size(self) -> int:
        """Jobs reserved by a cluster or running."""
        now = DatabaseNow()
        return Job.objects.filter(queue__in=self.queues).filter(
            Q(status=JobStatus.RUNNING)
            | Q(status__in=JobStatus.runnable(), reserved_until__gte=now)
        ).count()

    def ping(self) -> bool:
        connection.ensure_connection()
        return True

    def info(self) -> str:
        return f"Job table ({dialect.current()}), queues {', '.join(self.queues)}"

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
