"""A paused queue: no reservation, no claim; running jobs finish; resume wakes at once."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.core import queues, transitions
from jobs.exceptions import InvalidQueueName
from jobs.models import Job, JobStatus, QueuePause
from jobs.worker.reservation import reserve_due
from jobs.worker.wakeup import Heard
from tests.factories import JobFactory, StaffFactory

pytestmark = pytest.mark.django_db
S = JobStatus


def claim(job):
    return transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)


def test_a_paused_queue_is_neither_reserved_nor_claimed():
    paused, other = JobFactory(queue="emails"), JobFactory(queue="default")
    assert queues.pause("emails", by=StaffFactory())
    assert reserve_due(["emails", "default"], 10) == [other.pk]
    assert claim(paused) is None  # reserved before the pause: refused at claim
    assert Job.objects.get(pk=paused.pk).status == S.QUEUED  # still truthfully queued
    assert claim(other) is not None


def test_running_jobs_of_a_paused_queue_finish():
    job = JobFactory(queue="emails")
    claimed = claim(job)
    queues.pause("emails")
    transitions.succeed(claimed, result=1)
    assert Job.objects.get(pk=job.pk).status == S.SUCCEEDED


def test_resume_hands_back_reservations_made_while_paused():
    job = JobFactory(queue="emails", reserved_until=timezone.now() + timedelta(minutes=5))
    queues.pause("emails")
    assert queues.resume("emails")
    assert not QueuePause.objects.exists()
    assert reserve_due("emails", 10) == [job.pk]  # not after its reservation ran out
    assert claim(job) is not None


def test_pausing_twice_keeps_the_first_and_says_so():
    first = StaffFactory()
    assert queues.pause("emails", by=first)
    assert not queues.pause("emails", by=StaffFactory())
    assert QueuePause.objects.get().paused_by == first
    assert queues.resume("emails") and not queues.resume("emails")


@pytest.mark.parametrize("name", ["", " emails", "x" * 65, None, 42])
def test_a_bad_queue_name_is_refused_before_any_sql(name, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(InvalidQueueName, match="queue"):
        queues.pause(name)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_resume_wakes_listening_clusters_at_commit_only(listening):
    queues.pause("emails")
    with pytest.raises(RuntimeError), transaction.atomic():
        queues.resume("emails")
        raise RuntimeError("the request failed")
    assert [n.payload for n in listening.notifies(timeout=0.3)] == []
    assert QueuePause.objects.filter(queue="emails").exists()  # still paused
    assert queues.resume("emails")
    (payload,) = [n.payload for n in listening.notifies(timeout=1, stop_after=1)]
    heard = Heard.parse(payload)
    assert heard is not None and heard.queue == "emails"
    assert heard.job_id == "", "no job named: the clusters reserve the queue's best"
