"""Every backend of the database is terminated (what a restart does to clients) while
live workers run long jobs: every cluster claims new work within a second, and no
live worker is reaped for the outage its heartbeat lived through."""

import time

import pytest

from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus
from tests.cluster import terminate_other_backends, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
S = JobStatus
LEASE = 2.0
QUEUES = ("restart_a", "restart_b")


def test_after_every_backend_is_terminated_each_cluster_claims_within_a_second(
    cluster_factory, on_postgres
):
    assert on_postgres
    clusters = [cluster_factory(name=q, workers=2, env={
        "JOBS_QUEUES": q, "JOBS_LEASE_SECONDS": str(LEASE),
        "JOBS_REAPER_INTERVAL_SECONDS": "0.5",
    }) for q in QUEUES]
    warm = [enqueue("tests.noop", queue=q) for q in QUEUES]
    assert wait_for(lambda: Job.objects.filter(pk__in=[j.pk for j in warm],
                                               status=S.SUCCEEDED).count() == 2, 30), (
        "\n".join(c.log()[-2000:] for c in clusters))
    long = [enqueue("tests.sleep", 3 * LEASE, queue=q) for q in QUEUES]
    ids = [j.pk for j in long]
    assert wait_for(lambda: Job.objects.filter(pk__in=ids, status=S.RUNNING).count() == 2, 15)

    assert terminate_other_backends() >= 8  # pushers, maintenance, workers, heartbeats
    back = time.time()
    fresh = [enqueue("tests.noop", queue=q) for q in QUEUES]
    assert wait_for(lambda: Attempt.objects.filter(job__in=fresh).count() == 2, 5), (
        "\n".join(c.log()[-3000:] for c in clusters))
    for attempt in Attempt.objects.filter(job__in=fresh):
        assert attempt.started_at.timestamp() - back < 1.0, attempt.job.queue

    assert wait_for(lambda: Job.objects.filter(pk__in=ids, status=S.SUCCEEDED).count() == 2,
                    6 * LEASE), "\n".join(c.log()[-3000:] for c in clusters)
    assert not Attempt.objects.filter(status=AttemptStatus.LOST).exists()
    assert all(Job.objects.get(pk=pk).attempts.count() == 1 for pk in ids)
    assert all(c.proc.poll() is None for c in clusters)
