"""The reservation's order: best by effective priority, except the share of the
longest-due jobs (one in every JOBS['OLDEST_FIRST_EVERY'] a cluster reserves)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf

from jobs.core import queues
from jobs.exceptions import InvalidReservation
from jobs.models import Job, JobStatus
from jobs.worker.broker import JobTableBroker
from jobs.worker.reservation import oldest_share, reserve_due
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
LOW, HIGH = -1000, 1000


@pytest.fixture(autouse=True)
def no_maintenance_thread(monkeypatch):
    monkeypatch.setattr(JobTableBroker, "run_maintenance", False)


@pytest.fixture
def backlog():
    """Three high jobs due now, and a low one due a minute ago: a minute of aging is 6
    points, nowhere near the 2,000 between them."""
    now = timezone.now()
    return {"low": JobFactory(priority=LOW, run_after=now - timedelta(minutes=1)),
            "high": [JobFactory(priority=HIGH, run_after=now - timedelta(seconds=i))
                     for i in range(3)]}


@pytest.mark.parametrize(("every", "limit", "shares"), [
    (4, 1, [0, 0, 0, 1, 0, 0, 0, 1]),  # one a time: every 4th reservation
    (4, 2, [0, 1, 0, 1]),
    (4, 4, [1, 1, 1]),
    (4, 16, [4, 4]),
    (3, 2, [0, 1, 1, 0, 1, 1]),  # jobs 3, 6, 9, 12: counted per job, not per statement
    (1, 4, [4, 4]),  # oldest first
])
def test_the_share_is_one_job_in_every_n_reserved_whatever_the_reservation_size(
    every, limit, shares
):
    assert [oldest_share(i * limit, limit, every) for i in range(len(shares))] == shares


def test_the_share_takes_the_longest_due_job_whatever_its_priority(backlog):
    high = [job.pk for job in backlog["high"]]
    assert reserve_due("default", 2) == high[2:0:-1]  # by rank: the two best highs
    assert reserve_due("default", 2, oldest=1) == [high[0], backlog["low"].pk]


def test_in_the_hand_the_share_sits_where_its_effective_priority_puts_it(backlog):
    """Best first, as without a share: a high job of the same hand goes to a worker
    before the longest-due low one."""
    now = timezone.now()
    old_high = JobFactory(priority=HIGH, run_after=now - timedelta(hours=1))
    taken = reserve_due("default", 3, oldest=2)
    assert taken[0] == old_high.pk and taken[-1] == backlog["low"].pk
    assert len(taken) == 3


def test_jobs_due_at_the_same_moment_are_taken_in_the_order_they_were_made():
    """UUIDv7 ids follow creation; a tie on run_after goes to the smaller id."""
    due = timezone.now() - timedelta(seconds=30)
    first, second = (JobFactory(priority=LOW, run_after=due) for _ in range(2))
    JobFactory(priority=HIGH)
    assert first.pk < second.pk
    assert reserve_due("default", 2, oldest=1)[-1] == first.pk
    assert reserve_due("default", 1, oldest=1) == [second.pk]


def test_the_share_skips_paused_queues_reserved_jobs_and_jobs_not_due(backlog):
    now = timezone.now()
    JobFactory(queue="emails", priority=LOW, run_after=now - timedelta(hours=2))
    queues.pause("emails")
    JobFactory(priority=LOW, run_after=now + timedelta(minutes=5))  # not due
    taken_elsewhere = JobFactory(priority=LOW, run_after=now - timedelta(hours=1))
    assert reserve_due("default", 1, oldest=1) == [taken_elsewhere.pk]
    retrying = JobFactory(status=JobStatus.RETRYING, priority=LOW,
                          run_after=now - timedelta(minutes=2))
    # A job reserved already is skipped: the share is the next oldest.
    assert reserve_due(["default", "emails"], 1, oldest=1) == [retrying.pk]
    assert reserve_due(["default", "emails"], 1, oldest=1) == [backlog["low"].pk]


@pytest.mark.parametrize("oldest", [-1, 3])
def test_a_share_outside_the_reservation_is_refused_before_any_sql(
    oldest, django_assert_num_queries
):
    with django_assert_num_queries(0), pytest.raises(InvalidReservation, match="oldest"):
        reserve_due("default", 2, oldest=oldest)


def test_the_cluster_counts_what_it_reserved_so_one_a_time_still_gives_the_share(
    settings, monkeypatch, backlog
):
    settings.JOBS = {**settings.JOBS, "OLDEST_FIRST_EVERY": 2}
    monkeypatch.setattr(Conf, "BULK", 1)
    broker = JobTableBroker(list_key="default")
    taken = [broker.dequeue()[0][0] for _ in range(4)]
    high = [str(job.pk) for job in backlog["high"]]
    # Job 2 is the longest-due; 1, 3 and 4 are the best left.
    assert taken == [high[2], str(backlog["low"].pk), high[1], high[0]]
    assert Job.objects.filter(reserved_until__isnull=True).count() == 0
