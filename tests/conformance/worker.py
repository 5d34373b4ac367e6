"""What the ported suites need of a worker and of django-tasks-db's model, on this
package's own path.

`run_worker` stands for django-tasks-db's `db_worker --batch`: it reserves the best due
job of the queues as a cluster's pusher does (`reserve_due`) and runs it as a cluster's
worker does (`run_job`: claim, heartbeat, task, outcome), until none is due. The
`ready()`/`successful()`/`failed()` of DBTaskResult's queryset are the same questions
asked of the Job table.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from io import StringIO
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Now

from jobs.models import Job, JobStatus
from jobs.worker.reservation import reserve_due
from jobs.worker.runner import run_job
from tests.cluster import ClusterProcess, wait_for

FAILED = (JobStatus.DEAD, JobStatus.CANCELLED)


def ready() -> QuerySet[Job]:
    """Jobs a worker would take now: queued or retrying, and due."""
    return Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RETRYING),
                              run_after__lte=Now())


def successful() -> QuerySet[Job]:
    return Job.objects.filter(status=JobStatus.SUCCEEDED)


def failed() -> QuerySet[Job]:
    return Job.objects.filter(status__in=FAILED)


def run_worker(*, queue_name: str = "default", exclude_queues: str = "",
               max_tasks: int | None = None, **_: Any) -> int:
    """`db_worker --batch --queue-name=... [--exclude-queues=...] [--max-tasks=N]` on
    this package's worker path; returns how many jobs it ran.

    A job carries no backend alias (a cluster runs every backend's jobs), so the
    upstream `backend_name` is not looked at; nor is its output (verbosity, stdout).
    """
    if queue_name == "*":
        excluded = set(filter(None, exclude_queues.split(",")))
        queues = sorted(set(Job.objects.values_list("queue", flat=True)) - excluded)
    else:
        queues = queue_name.split(",")
    ran = 0
    while queues and (max_tasks is None or ran < max_tasks):
        due = reserve_due(queues, 1)
        if not due:
            break
        run_job(due[0])
        ran += 1
    return ran


@contextmanager
def engine_queries(testcase: Any, upstream: int):
    """Where upstream counts the queries of its own worker (`assertNumQueries(n)`
    around `db_worker`): this engine's worker sends others (a reservation, a claim,
    an outcome, a heartbeat on its own connection), so the count is not compared."""
    yield




def settled() -> bool:
    """No job left to run now, nor running: what `db_worker --batch` waits for."""
    return not (ready().exists() or Job.objects.filter(status=JobStatus.RUNNING).exists())


class WorkerProcess:
    """`python -m manage db_worker` as this package runs it: a qcluster (tests/cluster.py)
    with one worker on the default queue, seen through the subprocess.Popen methods
    the upstream tests call.

    `batch`: db_worker --batch exits once no task is left; a cluster runs until it
    is stopped, so wait() stops it (SIGTERM, its graceful shutdown) once no job is
    left (waiting up to a minute for that: a cluster takes seconds to start), then
    waits for it to exit: the upstream timeout is the exit's.
    """

    _count = 0

    def __init__(self, *, batch: bool = False) -> None:
        WorkerProcess._count += 1
        self.batch = batch
        self.cluster = ClusterProcess(
            name=f"conformance-{WorkerProcess._count}", workers=1, queues=["default"],
            env={"JOBS_TASK_MODULES": "tests.conformance.tasks"})
        self.args = self.cluster.proc.args

    @property
    def pid(self) -> int:
        return self.cluster.pid

    @property
    def returncode(self) -> int | None:
        return self.cluster.proc.returncode

    @property
    def stdout(self) -> StringIO:
        return StringIO(self.cluster.log())

    def started(self, timeout: float = 60.0) -> None:
        """Wait until the cluster runs (its log says so). Upstream sleeps
        WORKER_STARTUP_TIME (1 s) after starting db_worker, one process; a cluster
        starts several Django processes (master, sentinel, pusher, monitor, worker),
        which takes seconds on a busy machine, so the test's own sleep follows this."""
        assert wait_for(lambda: "] running." in self.cluster.log(), timeout=timeout), \
            self.cluster.log()

    def poll(self) -> int | None:
        return self.cluster.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        if self.batch and self.poll() is None:
            wait_for(settled, timeout=60.0)
            self.cluster.proc.send_signal(signal.SIGTERM)
        return self.cluster.proc.wait(timeout=timeout)

    def terminate(self) -> None:
        self.cluster.proc.terminate()

    def send_signal(self, sig: int) -> None:
        self.cluster.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL to every process of the cluster (master, sentinel, pusher, workers):
        a db_worker is one process, a cluster is several."""
        try:
            os.killpg(self.cluster.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        self.cluster.kill()


def stored_results() -> list[Any]:
    """What DummyBackend.results holds, for JobsBackend: every job's result, read back
    through get_result, in the order they were enqueued."""
    from tests.framework import default_task_backend

    return [default_task_backend.get_result(str(pk))
            for pk in Job.objects.order_by("created_at", "id").values_list("pk", flat=True)]
