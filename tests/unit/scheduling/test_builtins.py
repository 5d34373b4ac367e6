"""The built-in scheduled tasks (jobs.scheduling.builtins): the dead-letter alert and
the purge of finished jobs."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import enqueue
from jobs.models import (
    Attempt,
    AttemptStatus,
    DeadLetter,
    Job,
    JobStatus,
    OperationKey,
    Schedule,
)
from jobs.scheduling.builtins import alert_dead_letters, purge_finished
from jobs.worker.runner import run_job
from tests.factories import AttemptFactory, DeadLetterFactory, JobFactory
from tests.framework import admins
from tests.schedules import T0, make

pytestmark = pytest.mark.django_db


NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class TestDeadLetterAlert:
    @pytest.fixture(autouse=True)
    def admins(self, settings):
        settings.ADMINS = admins("Ops", "ops@example.com")

    def test_one_mail_per_day_for_old_unresolved_dead_letters(self, mailoutbox):
        DeadLetterFactory(failed_at=NOW - timedelta(hours=30), error_message="card declined")
        DeadLetterFactory(failed_at=NOW - timedelta(hours=1))  # too recent to count
        with transaction.atomic():
            assert alert_dead_letters(hours=24, now=NOW) == 1
        assert len(mailoutbox) == 1
        assert mailoutbox[0].to == ["ops@example.com"]
        assert "1 unresolved" in mailoutbox[0].subject
        assert "card declined" in mailoutbox[0].body
        with transaction.atomic():
            assert alert_dead_letters(hours=24, now=NOW + timedelta(hours=5)) == 1
        assert len(mailoutbox) == 1  # same day: no second mail
        with transaction.atomic():
            alert_dead_letters(hours=24, now=NOW + timedelta(days=1))
        assert len(mailoutbox) == 2  # next day: reminded again

    def test_no_mail_when_all_are_resolved(self, mailoutbox):
        DeadLetterFactory(failed_at=NOW - timedelta(days=3), resolved_at=NOW - timedelta(days=2))
        with transaction.atomic():
            assert alert_dead_letters(hours=24, now=NOW) == 0
        assert mailoutbox == []

    def test_logs_a_warning_even_without_admins(self, settings, mailoutbox, caplog):
        settings.ADMINS = []
        DeadLetterFactory(failed_at=NOW - timedelta(days=3))
        with caplog.at_level(logging.WARNING, logger="jobs.schedules"), transaction.atomic():
            assert alert_dead_letters(hours=24, now=NOW) == 1
        assert "unresolved dead letters are older than 24 hours" in caplog.text
        assert "no ADMINS configured" in caplog.text
        assert mailoutbox == []

    def test_the_registered_task_runs_as_a_job(self, settings, mailoutbox):
        settings.JOBS = {**settings.JOBS, "DEAD_LETTER_ALERT_HOURS": 2}
        DeadLetterFactory(failed_at=timezone.now() - timedelta(hours=3))
        job = enqueue("jobs.dead_letter_alert")
        assert run_job(job.pk) == JobStatus.SUCCEEDED
        job.refresh_from_db()
        assert job.result == 1
        assert len(mailoutbox) == 1
        assert OperationKey.objects.filter(key__startswith="dead-letter-alert:").count() == 1


class TestPurge:
    def old(self, status, days=40, **kwargs):
        finished = NOW - timedelta(days=days) if JobStatus(status).is_terminal else None
        return JobFactory(status=status, finished_at=finished,
                          created_at=NOW - timedelta(days=days + 1), **kwargs)

    def test_deletes_only_old_terminal_jobs_with_their_attempts_in_batches(self):
        doomed = [self.old(JobStatus.SUCCEEDED) for _ in range(3)] + [
            self.old(JobStatus.CANCELLED), self.old(JobStatus.DEAD)]
        for job in doomed:
            AttemptFactory(job=job, status=AttemptStatus.SUCCEEDED)
        OperationKey.objects.create(key="welcome-email:1", job=doomed[0])
        DeadLetterFactory(job=doomed[4], resolved_at=NOW - timedelta(days=39))
        kept = [
            self.old(JobStatus.SUCCEEDED, days=5),   # recent
            self.old(JobStatus.QUEUED),              # not finished
            self.old(JobStatus.RUNNING),
            self.old(JobStatus.RETRYING),
        ]
        open_dead = self.old(JobStatus.DEAD)
        DeadLetterFactory(job=open_dead)  # still needs an operator
        kept.append(open_dead)
        AttemptFactory(job=kept[0], status=AttemptStatus.SUCCEEDED)
        s = make(due=T0)
        Schedule.objects.filter(pk=s.pk).update(last_job=doomed[0])

        with CaptureQueriesContext(connection) as queries:
            assert purge_finished(days=30, now=NOW, batch_size=2) == 5
        job_deletes = [q for q in queries if q["sql"].startswith('DELETE FROM "jobs_job"')]
        assert len(job_deletes) == 3  # 2 + 2 + 1, never one huge delete

        assert set(Job.objects.values_list("pk", flat=True)) == {j.pk for j in kept}
        assert not Attempt.objects.filter(job_id__in=[j.pk for j in doomed]).exists()
        assert Attempt.objects.filter(job=kept[0]).exists()
        assert not OperationKey.objects.exists()
        assert DeadLetter.objects.get().job_id == open_dead.pk
        s.refresh_from_db()
        assert s.last_job_id is None  # SET_NULL

    def test_retention_comes_from_settings_and_must_be_positive(self, settings):
        settings.JOBS = {**settings.JOBS, "RETENTION_DAYS": 3}
        old = JobFactory(status=JobStatus.SUCCEEDED, finished_at=timezone.now() - timedelta(days=4))
        job = enqueue("jobs.purge_finished")
        assert run_job(job.pk) == JobStatus.SUCCEEDED
        job.refresh_from_db()
        assert job.result == 1
        assert not Job.objects.filter(pk=old.pk).exists()
        with pytest.raises(ValueError, match="at least 1 day"):
            purge_finished(days=0)
