"""The database's clock decides, never the Python clock of the host (issue 22, item 2).

Each test skews this process's clock (django.utils.timezone.now, which every
module reads) by a minute either way and checks that what decides (due, lease,
reaping, a retry's due time, a schedule's due time) does not move. On SQLite the
database runs in-process and its clock is this host's, so these run on
PostgreSQL only; tests/integration/test_clock_skew.py does the same with real
clusters under faketime.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from jobs.core import transitions as tr
from jobs.core.transitions import ErrorInfo
from jobs.models import AttemptStatus, Job, JobStatus, OverlapPolicy, Schedule
from jobs.scheduling.firing import create_schedule, fire_due
from jobs.worker import reaper
from jobs.worker.reservation import reserve_due
from tests.factories import JobFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]
S = JobStatus
SKEW = timedelta(seconds=60)
CLOSE = timedelta(seconds=2)  # this test's own statements, on a loaded machine


@pytest.fixture(params=[SKEW, -SKEW], ids=["ahead", "behind"])
def skew(request, monkeypatch):
    """This process's clock, a minute ahead or behind the database's."""
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() + request.param)
    return request.param


def read_database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


def due_in(seconds):
    """A queued job due `seconds` from now by the database's clock."""
    return JobFactory(run_after=read_database_now() + timedelta(seconds=seconds))


def claim(job):
    return tr.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)


def test_the_test_clock_is_skewed(skew):
    assert abs(timezone.now() - read_database_now() - skew) < CLOSE


def test_a_claim_waits_for_run_after_by_the_database_clock(skew):
    later, due = due_in(20), due_in(-1)
    assert claim(later) is None  # ahead: the old claim took it 40 s early
    claimed = claim(due)  # behind: the old claim refused it for another 59 s
    assert claimed is not None
    db_now = read_database_now()
    job = Job.objects.get(pk=due.pk)
    assert abs(job.started_at - db_now) < CLOSE
    assert abs(job.lease_expires_at - (job.started_at + timedelta(seconds=30))) < CLOSE
    assert claimed.attempt.started_at == job.started_at == job.attempts.get().started_at


def test_a_reservation_takes_only_jobs_due_by_the_database_clock(skew):
    later, due = due_in(20), due_in(-1)
    assert reserve_due("default", 10) == [due.pk]
    reserved = Job.objects.get(pk=due.pk).reserved_until
    assert abs(reserved - (read_database_now() + timedelta(seconds=30))) < CLOSE
    assert Job.objects.get(pk=later.pk).reserved_until is None


def test_a_renewal_extends_the_lease_from_the_database_clock(skew):
    claimed = claim(due_in(-1))
    assert tr.renew_lease(claimed, lease_seconds=30) == (True, False)
    job = Job.objects.get(pk=claimed.job.pk)
    assert abs(job.lease_expires_at - (read_database_now() + timedelta(seconds=30))) < CLOSE
    assert abs(job.heartbeat_at - read_database_now()) < CLOSE


def test_the_reaper_takes_only_leases_lapsed_by_the_database_clock(skew):
    live, lapsed = claim(due_in(-1)), claim(due_in(-1))
    Job.objects.filter(pk=lapsed.job.pk).update(
        lease_expires_at=read_database_now() - timedelta(seconds=1))
    # Ahead: the old reaper saw the live lease (30 s left) as lapsed 30 s ago.
    assert reaper.sweep().retried == [lapsed.job.pk]
    assert Job.objects.get(pk=live.job.pk).status == S.RUNNING
    # The retry is due at the database's clock plus the backoff (at most 2 s here).
    job = Job.objects.get(pk=lapsed.job.pk)
    assert job.status == S.RETRYING
    assert read_database_now() - CLOSE < job.run_after < read_database_now() + 2 * CLOSE
    assert job.attempts.get().status == AttemptStatus.LOST


def test_a_retry_is_due_at_the_database_clock_plus_its_backoff(skew):
    claimed = claim(due_in(-1))
    backoff = timedelta(seconds=10)
    assert tr.fail(claimed, ErrorInfo("ValueError", "x"),
                   retry_at=timezone.now() + backoff) == S.RETRYING
    job = Job.objects.get(pk=claimed.job.pk)
    assert abs(job.run_after - (read_database_now() + backoff)) < CLOSE
    attempt = job.attempts.get()
    assert attempt.retry_at == job.run_after and attempt.finished_at == job.last_failed_at
    assert timedelta(0) <= attempt.duration < CLOSE


def test_success_and_release_are_stamped_by_the_database_clock(skew):
    done, released = claim(due_in(-1)), claim(due_in(-1))
    tr.succeed(done, 42)
    job = Job.objects.get(pk=done.job.pk)
    assert abs(job.finished_at - read_database_now()) < CLOSE
    assert done.attempt.finished_at == job.finished_at == job.attempts.get().finished_at
    assert timedelta(0) <= job.attempts.get().duration < CLOSE
    tr.release(released)
    job = Job.objects.get(pk=released.job.pk)
    assert job.status == S.QUEUED and abs(job.run_after - read_database_now()) < CLOSE
    assert claim(job) is not None  # due again at once, whichever way this clock is off


def test_a_schedule_fires_when_due_by_the_database_clock(skew):
    schedule = create_schedule("s", "tests.noop", "0 0 1 1 *", "UTC",
                               overlap_policy=OverlapPolicy.ALLOW)
    Schedule.objects.filter(pk=schedule.pk).update(
        next_run_at=read_database_now() + timedelta(seconds=20))
    assert fire_due() == 0  # ahead: the old scheduler fired it 40 s early
    due_at = read_database_now() - timedelta(seconds=1)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due_at)
    assert fire_due() == 1  # behind: the old scheduler waited another 59 s
    schedule.refresh_from_db()
    assert abs(schedule.last_run_at - read_database_now()) < CLOSE
