from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus
from jobs.worker import reaper
from jobs.worker.runner import _run_claimed
from tests.cluster import wait_for
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db
S = JobStatus


def claim(job, lease_seconds=30, pid=777):
    return transitions.claim(job.pk, worker_host="box", worker_pid=pid, lease_seconds=lease_seconds)


def expire(job):
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_expired_lease_is_retried_and_the_attempt_closed_as_lost():
    job = enqueue("tests.add", 1, 2)
    claim(job)
    expire(job)
    result = reaper.sweep()
    assert result.retried == [job.pk] and result.dead == []
    job.refresh_from_db()
    assert job.status == S.RETRYING and job.lease_owner == ""
    a = job.attempts.get()
    assert a.status == AttemptStatus.LOST and a.error_class == "jobs.exceptions.WorkerLost"
    assert a.error_message.startswith("worker box:777 stopped heartbeating at ")
    assert a.finished_at is not None


def test_out_of_attempts_goes_dead_with_a_dead_letter():
    job = enqueue("tests.add", 1, 2, max_attempts=1)
    claim(job)
    expire(job)
    assert reaper.sweep().dead == [job.pk]
    assert Job.objects.get(pk=job.pk).status == S.DEAD
    assert DeadLetter.objects.get(job=job).error_class == "jobs.exceptions.WorkerLost"


def test_a_live_lease_is_left_alone_however_old_the_job():
    job = enqueue("tests.add", 1, 2)
    claim(job)
    long_ago = timezone.now() - timedelta(days=3)
    Job.objects.filter(pk=job.pk).update(created_at=long_ago, started_at=long_ago)
    assert reaper.sweep().retried == []
    assert Job.objects.get(pk=job.pk).status == S.RUNNING


def test_a_heartbeat_that_renewed_in_time_beats_a_reaper_with_a_stale_view():
    job = enqueue("tests.add", 1, 2)
    claimed = claim(job)
    expire(job)
    stale = Job.objects.get(pk=job.pk)  # what the reaper read
    transitions.renew_lease(claimed, lease_seconds=30)  # the worker is alive after all
    assert reaper.reap(stale, now=timezone.now()) is None
    assert Job.objects.get(pk=job.pk).status == S.RUNNING


def test_two_reapers_settle_a_job_once():
    job = enqueue("tests.add", 1, 2)
    claim(job)
    expire(job)
    stale = Job.objects.get(pk=job.pk)
    now = timezone.now()
    assert reaper.reap(stale, now=now) == S.RETRYING
    assert reaper.reap(stale, now=now) is None
    assert Attempt.objects.filter(job=job, status=AttemptStatus.LOST).count() == 1


def test_a_zombie_worker_that_finishes_after_being_reaped_commits_nothing():
    job = enqueue("tests.write_effect", "zombie-1")
    claimed = claim(job)
    expire(job)
    reaper.sweep()
    # The "dead" worker was only frozen; it wakes up and finishes its task.
    assert _run_claimed(claimed) is None
    assert not Effect.objects.filter(key="zombie-1").exists()
    assert Job.objects.get(pk=job.pk).status == S.RETRYING


def test_management_command(capsys):
    job = enqueue("tests.add", 1, 2)
    claim(job)
    expire(job)
    call_command("reap_orphans")
    assert "1 retried" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_long_healthy_job_outlives_many_leases_on_a_real_cluster(cluster_factory, on_postgres):
    job = enqueue("tests.sleep", 4.0)
    cluster = cluster_factory(env={
        "JOBS_LEASE_SECONDS": "1", "JOBS_REAPER_INTERVAL_SECONDS": "0.2",
    })
    assert wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, timeout=20), cluster.log()
    job.refresh_from_db()
    assert job.status == S.SUCCEEDED
    assert list(job.attempts.values_list("status", flat=True)) == ["succeeded"]
    connection.close()
