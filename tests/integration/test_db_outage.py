"""The database drops every connection mid-run; the cluster recovers by itself."""

import pytest

from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus
from tests.cluster import terminate_other_backends, wait_for
from tests.testapp.models import Effect

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
S = JobStatus
JOBS = 150


def test_cluster_survives_all_connections_being_terminated(cluster_factory, on_postgres):
    assert on_postgres
    for i in range(JOBS):
        enqueue("tests.slow_effect", f"outage:{i}", 0.03)
    cluster = cluster_factory(env={
        "JOBS_LEASE_SECONDS": "2", "JOBS_REAPER_INTERVAL_SECONDS": "0.5",
        "JOBS_RESERVATION_SECONDS": "3",
    })
    assert wait_for(lambda: Job.objects.filter(status=S.SUCCEEDED).count() >= 20, timeout=20)
    terminated = terminate_other_backends()
    assert terminated >= 2  # the cluster's pusher and workers were connected
    assert wait_for(lambda: Job.objects.filter(status=S.SUCCEEDED).count() >= 80, timeout=30)
    terminate_other_backends()

    assert wait_for(
        lambda: Job.objects.filter(status=S.SUCCEEDED).count() == JOBS, timeout=60
    ), cluster.log()[-3000:]
    assert cluster.proc.poll() is None  # recovered by itself, no restart
    assert Effect.objects.count() == JOBS
    assert not Attempt.objects.filter(status=AttemptStatus.RUNNING).exists()
