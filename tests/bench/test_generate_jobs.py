"""bench/generate_jobs.py (bench/dataset.py): a consistent mix, and rows the engine could
have written, so the pages and benches read what they would in production."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from bench import dataset, generate_jobs
from jobs.core.causes import cause
from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus, Step
from jobs.ops import failures

pytestmark = pytest.mark.django_db
S = JobStatus
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def quiet(_: str) -> None:
    return None


def test_generate_jobs_writes_a_consistent_mix():
    dataset.generate(300, 2, vacuum=False, say=quiet)
    assert Job.objects.count() == 300
    assert Attempt.objects.count() == 600
    dead = Job.objects.filter(status=S.DEAD)
    assert DeadLetter.objects.count() == dead.count()
    assert Job.objects.values("status").distinct().count() >= 4
    assert not Attempt.objects.filter(job__status=S.SUCCEEDED, number=2).exclude(
        status=AttemptStatus.SUCCEEDED).exists()
    assert all(j.last_error for j in dead)
    # Each letter points at its job's last attempt, which holds the error.
    assert all(d.attempt.number == d.job.last_attempt_number and d.error_class
               for d in DeadLetter.objects.select_related("attempt", "job"))
    assert Step.objects.filter(job__task_name="catalog.import").count() == 4 * Job.objects.filter(
        task_name="catalog.import").count()


def test_rows_are_shaped_as_the_engine_writes_them():
    dataset.generate(400, 3, vacuum=False, say=quiet)
    now = timezone.now()
    seen = set()
    for job in Job.objects.prefetch_related("attempts"):
        seen.add(job.status)
        attempts = sorted(job.attempts.all(), key=lambda a: a.number)
        last = attempts[-1]
        # A UUIDv7 made when the job was (jobs.models.ids).
        assert job.id.version == 7
        assert job.id.int >> 80 == (job.created_at - EPOCH) // timedelta(milliseconds=1)
        assert [a.number for a in attempts] == [1, 2, 3] and job.last_attempt_number == 3
        assert job.attempt_count == (0 if job.status == S.QUEUED else 3) <= job.max_attempts
        # The latest failure: the last attempt, or the one before when it did not fail.
        failed = last if job.status in (S.DEAD, S.RETRYING, S.QUEUED) else attempts[-2]
        assert job.last_failed_at == failed.finished_at
        if job.status == S.QUEUED:  # requeued: the cause and error cleared, history kept
            assert job.failure_cause == job.last_error == "" and job.started_at is None
            assert job.run_after <= now and job.finished_at is None
            continue
        assert job.failure_cause == cause(failed.error_class, failed.error_message)
        assert job.started_at == last.started_at
        if job.status in (S.SUCCEEDED, S.DEAD, S.CANCELLED):
            assert job.finished_at == last.finished_at
        if job.status == S.DEAD:  # out of retries, dead-lettered when it failed
            assert job.attempt_count == job.max_attempts
            assert job.dead_letters.get().failed_at == job.finished_at == job.last_failed_at
        if job.status == S.RETRYING:  # retries left, due when its last attempt said
            assert job.attempt_count < job.max_attempts
            assert job.run_after == last.retry_at > job.last_failed_at
    assert {S.SUCCEEDED, S.DEAD, S.QUEUED} <= seen
    # The failures page groups them by the stored cause: none blank.
    groups = failures.groups(limit=50, samples=False)
    assert groups and all(g.cause for g in groups)


def test_runs_as_a_script(capsys):
    assert generate_jobs.main(["--jobs", "20", "--attempts-per-job", "1", "--no-vacuum"]) == 0
    assert "generated 20 jobs, 20 attempts" in capsys.readouterr().out
    assert Job.objects.count() == 20
    assert not Job.objects.exclude(status__in=[S.DEAD, S.RETRYING]).exclude(
        failure_cause="").exists()  # one attempt: only a failing one has a cause


def test_not_shipped_in_the_wheel():
    from pathlib import Path

    import jobs

    assert not (Path(jobs.__file__).parent / "management" / "commands" / "generate_jobs.py"
                ).exists()
