from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.signing import SignedPackage

from jobs.models import Job, JobStatus
from jobs.worker.broker import JobTableBroker, package, reserve_due
from jobs.worker.runner import execute
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
S = JobStatus


@pytest.fixture(autouse=True)
def no_maintenance_thread(monkeypatch):
    monkeypatch.setattr(JobTableBroker, "run_maintenance", False)


def test_reserves_due_runnable_jobs_of_its_queue_best_first():
    now = timezone.now()
    low = JobFactory(priority=0, run_after=now - timedelta(seconds=5))
    high = JobFactory(priority=9, run_after=now)
    retry = JobFactory(status=S.RETRYING, run_after=now - timedelta(seconds=1))
    JobFactory(run_after=now + timedelta(minutes=1))  # not due
    JobFactory(queue="emails")  # other queue
    for status in (S.RUNNING, S.SUCCEEDED, S.DEAD, S.CANCELLED):
        JobFactory(status=status)
    assert reserve_due("default", 10) == [high.pk, low.pk, retry.pk]


def test_a_reservation_keeps_other_clusters_off_until_it_expires():
    job = JobFactory()
    assert reserve_due("default", 5, seconds=60) == [job.pk]
    assert reserve_due("default", 5) == []
    Job.objects.filter(pk=job.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert reserve_due("default", 5) == [job.pk]
    job.refresh_from_db()
    assert job.status == S.QUEUED  # a reservation never pretends the job started


def test_limit_is_respected():
    for _ in range(5):
        JobFactory()
    assert len(reserve_due("default", 2)) == 2
    assert len(reserve_due("default", 10)) == 3


def test_dequeue_hands_out_signed_packages_carrying_only_the_job_id():
    job = JobFactory()
    broker = JobTableBroker(list_key="default")
    [(ack_id, payload)] = broker.dequeue()
    task = SignedPackage.loads(payload)
    assert ack_id == str(job.pk)
    assert task["func"] is execute and task["args"] == (str(job.pk),) and task["kwargs"] == {}
    assert task["save"] is False
    assert broker.dequeue() is None  # nothing else due
    assert broker.queue_size() == 0


def test_enqueue_through_django_q_is_refused():
    with pytest.raises(NotImplementedError, match="jobs.enqueue"):
        JobTableBroker(list_key="default").enqueue(package(JobFactory().pk))
