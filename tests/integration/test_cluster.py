"""End to end through real `manage.py qcluster` processes on the test database."""

import pytest
from django.db import transaction

from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = JobStatus


def test_jobs_run_to_truthful_terminal_states(cluster_factory, on_postgres):
    ok = enqueue("tests.add", 20, b=22)
    failing = enqueue("tests.fail_always", "upstream <down>")  # 3 attempts, backoff <= 1 s
    flaky = enqueue("tests.fail_until", 2)
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("tests.write_effect", "never")
        raise RuntimeError("rolled back")

    cluster = cluster_factory()
    terminal = [S.SUCCEEDED, S.DEAD, S.CANCELLED]
    assert wait_for(
        lambda: Job.objects.filter(status__in=terminal).count() == 3, timeout=30
    ), cluster.log()

    ok.refresh_from_db()
    assert ok.status == S.SUCCEEDED and ok.result == 42

    flaky.refresh_from_db()
    assert flaky.status == S.SUCCEEDED and flaky.result == 2

    failing.refresh_from_db()
    assert failing.status == S.DEAD and failing.attempt_count == 3
    attempts = list(failing.attempts.order_by("number"))
    assert [a.status for a in attempts] == ["failed"] * 3
    for before, after in zip(attempts, attempts[1:], strict=False):
        # The backoff is honoured: never early, and picked up promptly when due.
        assert after.started_at >= before.retry_at
        assert (after.started_at - before.retry_at).total_seconds() < 1.5
    assert all(a.worker_pid and a.worker_host for a in attempts)
    dl = DeadLetter.objects.get(job=failing)
    assert dl.attempts == 3 and dl.error_message == "upstream <down>"

    assert Job.objects.count() == 3  # the rolled-back job never existed
    assert not Job.objects.filter(status=S.RUNNING).exists()


def test_a_task_overrunning_its_timeout_ends_timed_out_on_a_real_cluster(cluster_factory):
    job = enqueue("tests.times_out", 30)  # timeout=1, max_attempts=2
    cluster = cluster_factory()
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.DEAD, 40), (
        cluster.log()[-3000:])
    attempts = list(Attempt.objects.filter(job=job).order_by("number"))
    assert [a.status for a in attempts] == [AttemptStatus.TIMED_OUT] * 2
    assert all("exceeded its timeout of 1 s" in a.error_message for a in attempts)
    assert all(a.duration.total_seconds() < 5 for a in attempts)  # stopped, not left to run
    assert DeadLetter.objects.get(job=job).error_class == "TimeoutError"
