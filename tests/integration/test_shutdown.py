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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_idle_cluster_exits_within_half_a_second(cluster_factory, on_postgres, sig):
    """Nothing to finish: the pusher stops waiting for work at once, the sentinel sees
    its processes go within 10 ms, and the main process skips the interpreter's
    teardown (before: 1.5-2.5 s)."""
    cluster = cluster_factory(workers=2)
    assert wait_for(lambda: "] running." in cluster.log(), timeout=60), cluster.log()
    time.sleep(1.5)  # past start-up: the pusher is in its idle wait (1 s fallback)
    started = time.monotonic()
    cluster.proc.send_signal(sig)
    returncode = cluster.proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert returncode == 0, cluster.log()
    assert "cluster stopped" in cluster.log()
    assert elapsed < 0.5, f"an idle cluster took {elapsed:.2f} s to exit\n{cluster.log()}"


def test_a_second_interrupt_releases_running_jobs_at_once(cluster_factory, on_postgres):
    """Ctrl-C twice: the grace period (25 s here) ends at the second, and the running job
    is handed back truthfully: queued again, its attempt `interrupted` with the
    engine's WorkerShutdown, not counted against its attempts."""
    long = enqueue("tests.sleep", 60.0)
    cluster = cluster_factory(workers=1, env={"JOBS_SHUTDOWN_GRACE_SECONDS": "25"})
    assert wait_for(lambda: Job.objects.filter(pk=long.pk, status=S.RUNNING).exists(),
                    timeout=60), cluster.log()

    cluster.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert cluster.proc.poll() is None  # the first only drains: the job may finish
    long.refresh_from_db()
    assert long.status == S.RUNNING

    started = time.monotonic()
    cluster.proc.send_signal(signal.SIGINT)
    returncode = cluster.proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert returncode == 0, cluster.log()
    assert elapsed < 2, f"took {elapsed:.2f} s after the second interrupt\n{cluster.log()}"
    assert "interrupted again: releasing running jobs now" in cluster.log()
    long.refresh_from_db()
    assert long.status == S.QUEUED and long.attempt_count == 0
    assert long.lease_owner == "" and long.lease_expires_at is None
    attempt = long.attempts.get()
    assert attempt.status == AttemptStatus.INTERRUPTED and attempt.finished_at is not None
    assert attempt.error_class == "jobs.exceptions.WorkerShutdown"
