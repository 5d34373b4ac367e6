"""A schedule fires on a real idle cluster (qcluster in its own process) within two
seconds of its due time."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from jobs import enqueue
from jobs.models import Job, JobStatus
from jobs.scheduling.firing import create_schedule
from tests.cluster import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_fires_within_two_seconds_on_an_idle_cluster(cluster_factory):
    cluster = cluster_factory()
    warm = enqueue("tests.noop")  # proves the pusher, and so the maintenance thread, is up
    assert wait_for(lambda: Job.objects.get(pk=warm.pk).status == JobStatus.SUCCEEDED, 30), (
        cluster.log()
    )
    due = timezone.now() + timedelta(seconds=1)
    s = create_schedule("every-minute", "tests.noop", "* * * * *", "UTC", next_run_at=due)
    key = f"schedule:{s.pk}:{due.astimezone(UTC).isoformat()}"
    assert wait_for(lambda: Job.objects.filter(idempotency_key=key).exists(), 10,
                    interval=0.05), cluster.log()
    job = Job.objects.get(idempotency_key=key)
    assert due <= job.created_at <= due + timedelta(seconds=2), job.created_at - due
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 10)
