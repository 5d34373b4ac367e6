"""An idle cluster on PostgreSQL starts a new job within milliseconds of its commit, and a
delayed job at its run_after, although its fallback poll is 30 s away; and it stops
promptly, its pusher's 30 s wait ended by the drain signal (jobs.worker.broker)."""

import signal
import time
from datetime import timedelta

import pytest

from jobs import enqueue
from jobs.models import Attempt, Job, JobStatus
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]


def test_an_idle_cluster_is_woken_at_commit_and_at_run_after(cluster_factory, on_postgres):
    assert on_postgres
    cluster = cluster_factory(workers=2, env={"JOBS_LISTEN_FALLBACK_SECONDS": "30"})
    warm = enqueue("tests.noop")
    assert wait_for(lambda: Job.objects.get(pk=warm.pk).status == JobStatus.SUCCEEDED, 30), (
        cluster.log()[-3000:])
    time.sleep(0.5)  # the cluster is idle, waiting on LISTEN

    latencies = []
    for _ in range(5):
        job = enqueue("tests.noop")
        assert wait_for(lambda j=job: Attempt.objects.filter(job=j).exists(), 5, 0.005)
        attempt = Attempt.objects.get(job=job)
        latencies.append((attempt.started_at - job.created_at).total_seconds())
        time.sleep(0.2)
    assert max(latencies) < 0.5, latencies  # a poll would have taken up to 30 s

    delayed = enqueue("tests.noop", run_after=timedelta(seconds=1.5))
    assert wait_for(lambda: Attempt.objects.filter(job=delayed).exists(), 10, 0.01)
    late = (Attempt.objects.get(job=delayed).started_at - delayed.run_after).total_seconds()
    assert 0 <= late < 0.5, late

    # Stopped here, not left to the fixture's teardown: an idle pusher in its 30 s wait
    # must not hold the cluster's exit (the teardown waited up to 15 s, then killed it).
    began = time.monotonic()
    cluster.proc.send_signal(signal.SIGTERM)
    cluster.proc.wait(timeout=30)
    stopped = time.monotonic() - began
    assert stopped < 10, (stopped, cluster.log()[-3000:])
