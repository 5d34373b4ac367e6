"""SIGTERM to a real cluster: short jobs finish, long ones are given back at once."""

import signal
import time

import pytest

from jobs import enqueue
from jobs.models import AttemptStatus, Job, JobStatus
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = JobStatus


def test_sigterm_finishes_within_grace_and_releases_the_rest(cluster_factory, on_postgres):
    short = enqueue("tests.sleep", 0.8)
    long = enqueue("tests.sleep", 60.0)
    cluster = cluster_factory(env={"JOBS_SHUTDOWN_GRACE_SECONDS": "2"})
    assert wait_for(
        lambda: Job.objects.filter(status=S.RUNNING).count() == 2, timeout=15
    ), cluster.log()
    waiting = enqueue("tests.add", 1, 2, run_after=None)  # queued while shutting down

    started = time.monotonic()
    cluster.proc.send_signal(signal.SIGTERM)
    cluster.proc.wait(timeout=30)
    elapsed = time.monotonic() - started

    short.refresh_from_db()
    long.refresh_from_db()
    assert short.status == S.SUCCEEDED
    assert long.status == S.QUEUED, cluster.log()
    assert long.lease_owner == "" and long.lease_expires_at is None
    assert long.attempt_count == 0  # an interrupted try is not held against the job
    attempt = long.attempts.get()
    assert attempt.status == AttemptStatus.INTERRUPTED and attempt.finished_at is not None
    # Released after the grace period, not after the 30 s lease.
    assert elapsed < 12, f"shutdown took {elapsed:.1f} s"
    waiting.refresh_from_db()
    assert waiting.status in (S.QUEUED, S.SUCCEEDED)
    assert not Job.objects.filter(status=S.RUNNING).exists()
