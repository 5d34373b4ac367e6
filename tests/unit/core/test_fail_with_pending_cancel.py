"""A pending cancel wins over a retry (issue 21): the failing attempt is recorded as it
happened, and the job goes cancelled instead of running again, decided by the same
conditional UPDATE that records the failure (jobs.core.transitions.fail)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import enqueue, task
from jobs.core import transitions as tr
from jobs.models import AttemptStatus, DeadLetter, Job, JobStatus
from jobs.worker import reaper
from jobs.worker.runner import run_job
from tests.factories import JobFactory
from tests.testapp.tasks import FAST

pytestmark = pytest.mark.django_db
S = JobStatus


@task(name="tests.cancel.fails", max_attempts=3, backoff=FAST, atomic=False)
def fails(message: str) -> None:
    raise RuntimeError(message)


def running_job(**kw):
    return tr.claim(JobFactory(**kw).pk, worker_host="h", worker_pid=1, lease_seconds=30)


def error():
    return tr.ErrorInfo("RuntimeError", "boom", "Traceback ...")


def request_cancel(job_id):
    Job.objects.filter(pk=job_id).update(cancel_requested_at=timezone.now())


class TestFail:
    def test_a_failure_with_a_cancel_pending_cancels_instead_of_retrying(self):
        c = running_job()
        request_cancel(c.job.pk)
        when = timezone.now() + timedelta(seconds=5)
        assert tr.fail(c, error(), retry_at=when) == S.CANCELLED
        job = Job.objects.get(pk=c.job.pk)
        assert job.status == S.CANCELLED and job.finished_at is not None
        assert job.run_after < when  # no retry scheduled
        assert job.lease_owner == "" and job.lease_expires_at is None
        assert job.last_error == "RuntimeError: boom"
        a = job.attempts.get()
        assert a.status == AttemptStatus.FAILED and a.retry_at is None
        assert (a.error_class, a.error_message, a.traceback) == ("RuntimeError", "boom",
                                                                 "Traceback ...")
        assert not DeadLetter.objects.exists()

    def test_a_timeout_with_a_cancel_pending_is_recorded_timed_out_and_cancels(self):
        c = running_job()
        request_cancel(c.job.pk)
        assert tr.fail(c, error(), retry_at=timezone.now(),
                       attempt_status=AttemptStatus.TIMED_OUT) == S.CANCELLED
        assert Job.objects.get(pk=c.job.pk).attempts.get().status == AttemptStatus.TIMED_OUT

    def test_without_a_cancel_the_failure_still_retries(self):
        c = running_job()
        when = timezone.now() + timedelta(seconds=5)
        assert tr.fail(c, error(), retry_at=when) == S.RETRYING
        job = Job.objects.get(pk=c.job.pk)
        # The 5 s backoff, counted from the database's clock (here: the same clock).
        assert abs(job.run_after - when) < timedelta(seconds=1) and job.finished_at is None
        assert job.attempts.get().retry_at == job.run_after

    def test_out_of_retries_a_cancel_pending_still_dead_letters_the_failure(self):
        c = running_job(max_attempts=1)
        request_cancel(c.job.pk)
        assert tr.fail(c, error(), retry_at=None) == S.DEAD
        assert DeadLetter.objects.get(job_id=c.job.pk).error_message == "boom"

    def test_the_cancel_is_decided_by_the_one_update_that_records_the_failure(self):
        c = running_job()
        request_cancel(c.job.pk)
        with CaptureQueriesContext(connection) as captured:
            tr.fail(c, error(), retry_at=timezone.now())
        job_updates = [q["sql"] for q in captured.captured_queries
                       if q["sql"].startswith('UPDATE "jobs_job"')]
        assert len(job_updates) == 1
        assert "CASE WHEN" in job_updates[0] and "cancel_requested_at" in job_updates[0]

    def test_a_stale_attempt_still_cannot_fail_the_job(self):
        c = running_job()
        Job.objects.filter(pk=c.job.pk).update(last_attempt_number=2)
        request_cancel(c.job.pk)
        with pytest.raises(tr.LostOwnership):
            tr.fail(c, error(), retry_at=timezone.now())
        assert Job.objects.get(pk=c.job.pk).status == S.RUNNING


class TestRunner:
    def test_a_cancel_that_arrives_between_the_failure_and_its_write_wins(self, monkeypatch):
        job = enqueue("tests.cancel.fails", "disk full")
        real_fail = tr.fail

        def cancel_first(claimed, *args, **kwargs):
            assert tr.cancel([claimed.job.pk]).requested == [claimed.job.pk]
            return real_fail(claimed, *args, **kwargs)

        monkeypatch.setattr(tr, "fail", cancel_first)
        assert run_job(job.pk) == S.CANCELLED
        job.refresh_from_db()
        assert job.status == S.CANCELLED
        a = job.attempts.get()
        assert a.status == AttemptStatus.FAILED and a.error_message == "disk full"
        Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=5))
        assert run_job(job.pk) is None  # it does not run again


class TestReaper:
    def test_a_lost_attempt_of_a_job_with_a_cancel_pending_is_cancelled_not_retried(self):
        job = enqueue("tests.add", 1, 2)
        tr.claim(job.pk, worker_host="box", worker_pid=777, lease_seconds=30)
        assert tr.cancel([job.pk]).requested == [job.pk]
        Job.objects.filter(pk=job.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1))
        result = reaper.sweep()
        assert result.cancelled == [job.pk] and result.retried == [] and result.dead == []
        job.refresh_from_db()
        assert job.status == S.CANCELLED
        a = job.attempts.get()
        assert a.status == AttemptStatus.LOST and a.error_class == "jobs.exceptions.WorkerLost"
        assert a.retry_at is None
