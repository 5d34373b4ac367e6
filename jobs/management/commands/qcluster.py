"""django-q2's qcluster, with a shutdown that never strands a job.

On SIGTERM or SIGINT to this (main) process:
1. workers are told to drain (SIGUSR2): finish the job in hand, claim no new one;
   jobs already handed to the cluster stay queued and their reservation is dropped;
   the pusher stops waiting for work at once (jobs.worker.broker);
2. running jobs get JOBS_SHUTDOWN_GRACE_SECONDS to finish; a second SIGTERM or
   SIGINT ends the grace period at once;
3. then workers are interrupted (SIGUSR1): each gives its job back at once
   (attempt `interrupted`, lease cleared, job `queued`) instead of leaving it
   to the reaper after the lease runs out;
4. anything still alive after that is killed; the reaper covers what it held.
An idle cluster exits within a few tenths of a second: the process skips the
interpreter's teardown once everything is stopped and written (`run_from_argv`).

Send SIGTERM to this process only (Docker and Kubernetes do; under systemd use
KillMode=mixed): a SIGTERM to every process would kill workers mid-job.

Which queues a cluster serves: `--queues reports,emails`, else the queue named
like the cluster (`--name reports`), else JOBS['QUEUES'], else
JOBS['DEFAULT_QUEUE']. The broker is built here with that list and handed to
django-q2, so the choice holds whatever django-q2 read from its settings at
import. A database that is not reachable at start is waited for, with backoff.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

import django_q.cluster
import psutil
from django.core.management.base import BaseCommand, CommandError
from django.db import Error as DatabaseError
from django_q.cluster import Cluster
from django_q.conf import Conf

from jobs import conf
from jobs.core.clusters import Registration
from jobs.core.registry import check_queue
from jobs.database import connection
from jobs.exceptions import InvalidJobOption
from jobs.ops.serving import UnservedWatch
from jobs.worker.broker import JobTableBroker
from jobs.worker.runner import DRAIN_SIGNAL, INTERRUPT_SIGNAL

logger = logging.getLogger("jobs.cluster")
KILL_AFTER_INTERRUPT_SECONDS = 10
# How often django-q2's sentinel looks whether its processes have stopped (pusher, then
# workers, then monitor, one after the other); its own 0.1 s made three rounds of up to
# 0.1 s on every stop. Each look also saves the cluster's stat (a cache write).
SENTINEL_POLL_SECONDS = 0.01


class Command(BaseCommand):
    help = "Start a django-q2 cluster that runs jobs from the Job table and shuts down cleanly."

    def add_arguments(self, parser):
        parser.add_argument("-n", "--name", dest="cluster_name", default=None,
                            help="Cluster name; without --queues, also the job queue it serves.")
        parser.add_argument("-q", "--queues", default=None,
                            help="Comma-separated job queues this cluster serves "
                                 "(default: JOBS['QUEUES'], else JOBS['DEFAULT_QUEUE']).")

    def handle(self, *args, cluster_name: str | None = None, queues: str | None = None,
               **options):
        served = served_queues(cluster_name, queues)
        name = cluster_name or Conf.CLUSTER_NAME
        Conf.CLUSTER_NAME = name  # django-q2's own logs and stats name this cluster
        wait_for_database()
        logger.info("cluster %s serves queue(s) %s", name, ", ".join(served))
        # Inherited by sentinel, pusher and monitor, which must not die of these;
        # workers install real handlers when they spawn (jobs.runner).
        signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
        signal.signal(INTERRUPT_SIGNAL, signal.SIG_IGN)
        stop = Interrupts()
        # Installs django-q2's handlers, which block inside the handler.
        cluster = Cluster(broker=JobTableBroker(list_key=name, queues=served))
        # Ours only flag, and are in place before start(): a SIGTERM during start-up
        # must not reach django-q2's handler, which would wait for running jobs forever.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop.received)
        # Before start(): the cluster's id is handed down to the processes it starts.
        registration = Registration(name, served, Conf.WORKERS)
        # Inherited by the sentinel: it only ever sleeps to poll its processes.
        django_q.cluster.sleep = _sentinel_sleep  # type: ignore[attr-defined]
        cluster.start()
        refresh_every = conf.get().cluster_refresh_seconds
        next_refresh = 0.0
        # Each refresh also looks for queues with due jobs that no live cluster serves,
        # and says so once per episode in this cluster's log (jobs.ops.serving).
        unserved = UnservedWatch()
        try:
            while not stop.wait(0.5):
                if not cluster.sentinel.is_alive():
                    logger.error("the cluster's sentinel died; exiting")
                    return
                if time.monotonic() >= next_refresh:
                    registration.refresh(_descendants(cluster.sentinel.pid))
                    unserved.check()
                    next_refresh = time.monotonic() + refresh_every
            self.shut_down(cluster, stop)
        finally:
            registration.stopped()

    def shut_down(self, cluster: Cluster, interrupts: Interrupts | None = None) -> None:
        grace = conf.get().shutdown_grace_seconds
        sentinel = cluster.sentinel
        logger.info("shutting down: draining, grace %.1f s", grace)
        _signal_all(_descendants(sentinel.pid), DRAIN_SIGNAL)
        cluster.stop_event.set()
        # Woken by the sentinel's exit or by a second interrupt, whichever comes first.
        hurried = [interrupts.hurry] if interrupts is not None else []
        if sentinel.sentinel in wait([sentinel.sentinel, *hurried], timeout=grace):
            sentinel.join(timeout=KILL_AFTER_INTERRUPT_SECONDS)  # its end is under way
        if sentinel.is_alive():
            if interrupts is not None and interrupts.count > 1:
                logger.warning("interrupted again: releasing running jobs now")
            else:
                logger.warning("grace period over: releasing running jobs")
            _signal_all(_descendants(sentinel.pid), INTERRUPT_SIGNAL)
            sentinel.join(timeout=KILL_AFTER_INTERRUPT_SECONDS)
        if sentinel.is_alive():
            logger.error("cluster did not stop; killing it (the reaper settles its jobs)")
            _signal_all(_descendants(sentinel.pid) + [sentinel.pid], signal.SIGKILL)
            sentinel.join(timeout=5)
        logger.info("cluster stopped")

    def run_from_argv(self, argv: list[str]) -> None:
        """Run, then end the process without the interpreter's teardown.

        Once the cluster has stopped and its row says so, nothing is left to write,
        and freeing every module and object of a Django process took 0.5-0.8 s of
        an idle cluster's exit. Output is flushed and connections closed first
        (`run_from_argv` closes them). Only for the command line: `call_command`
        returns as usual.
        """
        super().run_from_argv(argv)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class Interrupts:
    """SIGTERM and SIGINT to the cluster's main process: the first asks for the graceful
    shutdown (`stopping`), a second ends the grace period at once (`hurry` becomes
    readable). The handler only sets and writes: the main thread acts."""

    def __init__(self) -> None:
        self.count = 0
        self.stopping = threading.Event()
        self.hurry, self._hurry = os.pipe()

    def received(self, signum: int, frame: object) -> None:
        self.count += 1
        self.stopping.set()
        if self.count == 2:
            os.write(self._hurry, b"!")

    def wait(self, timeout: float) -> bool:
        return self.stopping.wait(timeout)


def _sentinel_sleep(seconds: float) -> None:
    time.sleep(min(seconds, SENTINEL_POLL_SECONDS))


def served_queues(cluster_name: str | None, queues: str | None) -> list[str]:
    """The queues to serve, by the precedence in the module docstring; CommandError if bad."""
    if queues is not None:
        names = [q.strip() for q in queues.split(",")]
        option = "--queues"
    elif cluster_name:
        names, option = [cluster_name], "--name"
    else:
        names, option = list(conf.get().served_queues()), "JOBS['QUEUES']"
    try:
        return list(dict.fromkeys(check_queue(q) for q in names))
    except InvalidJobOption as exc:
        raise CommandError(f"{option}: {exc}") from None


def wait_for_database(max_backoff: float = 10.0) -> None:
    """Block until the database answers, retrying with backoff and saying so, instead of
    letting every process of the cluster fail at once."""
    backoff = 0.5
    while True:
        try:
            connection.ensure_connection()
            return
        except DatabaseError as exc:
            logger.warning("database not reachable (%s); retrying in %.1f s", exc, backoff)
            connection.close()
            time.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
        finally:
            # Children must not inherit this connection; each opens its own.
            connection.close()


def _descendants(pid: int) -> list[int]:
    """Every process under `pid` (children, grandchildren...), as psutil finds them on
    any platform; empty if `pid` is gone."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:  # gone (NoSuchProcess), or not ours to look at (AccessDenied)
        return []


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
