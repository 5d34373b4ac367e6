from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import JobStatus
from jobs.ops import stats
from tests.factories import DeadLetterFactory, JobFactory

pytestmark = pytest.mark.django_db
S = JobStatus


def test_status_counts_include_every_status():
    JobFactory.create_batch(2)
    JobFactory(status=S.DEAD)
    counts = stats.status_counts()
    assert counts["queued"] == 2 and counts["dead"] == 1 and counts["running"] == 0
    assert set(counts) == {s.value for s in S}


def test_queue_depths_count_only_due_runnable_jobs():
    now = timezone.now()
    JobFactory(queue="emails", run_after=now - timedelta(minutes=5))
    JobFactory(queue="emails", status=S.RETRYING, run_after=now - timedelta(minutes=1))
    JobFactory(queue="emails", run_after=now + timedelta(minutes=5))  # not due
    JobFactory(queue="default", status=S.RUNNING)
    [emails] = stats.queue_depths(now)
    assert emails["queue"] == "emails" and emails["depth"] == 2
    assert emails["oldest_age"] == timedelta(minutes=5)
    assert stats.oldest_queued_age(now) == timedelta(minutes=5)


def test_finished_per_minute_splits_succeeded_and_failed():
    now = timezone.now().replace(second=30, microsecond=0)
    JobFactory(status=S.SUCCEEDED, finished_at=now)
    JobFactory(status=S.SUCCEEDED, finished_at=now - timedelta(minutes=2))
    JobFactory(status=S.DEAD, finished_at=now - timedelta(minutes=2))
    JobFactory(status=S.SUCCEEDED, finished_at=now - timedelta(hours=2))  # outside the hour
    series = stats.finished_per_minute(60, now)
    assert len(series) == 60
    assert series[-1]["succeeded"] == 1
    assert (series[-3]["succeeded"], series[-3]["failed"]) == (1, 1)
    assert sum(b["succeeded"] + b["failed"] for b in series) == 3


def test_unresolved_dead_letters():
    DeadLetterFactory()
    DeadLetterFactory(resolved_at=timezone.now())
    assert stats.unresolved_dead_letters() == 1
