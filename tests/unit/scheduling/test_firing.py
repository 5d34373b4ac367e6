"""Firing schedules (jobs.scheduling.firing): validation and planning, exactly one job
per due time (across DST, racing schedulers, stale claims), misfire and overlap
policies, and the maintenance thread that fires them in a cluster."""

import logging
import math
import re
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from jobs.core import transitions
from jobs.models import (
    Job,
    JobStatus,
    MisfirePolicy,
    OverlapPolicy,
    Schedule,
)
from jobs.models.schedule import MAX_JITTER_SECONDS
from jobs.scheduling.cron import next_run_after
from jobs.scheduling.firing import Outcome, create_schedule, fire, fire_due, run_now
from jobs.worker import maintenance
from tests.cluster import wait_for
from tests.racing import race
from tests.schedules import T0, jobs_of, make

pytestmark = pytest.mark.django_db


class TestValidation:
    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"cron": "0 25 * * *"}, "cron", "Invalid cron expression"),
            ({"cron": "0 2 * *"}, "cron", "5 fields"),
            ({"cron": "0 0 2 * * *"}, "cron", "5 fields"),
            ({"cron": "R 2 * * *"}, "cron", "Random"),
            ({"cron": "0 0 31 2 *"}, "cron", "Invalid cron expression"),
            ({"cron": "@reboot"}, "cron", "Unknown alias"),
            ({"tz": "Europe/Atlantis"}, "time_zone", "Unknown time zone"),
            ({"tz": "CEST"}, "time_zone", "Unknown time zone"),
            ({"task": "tests.nope"}, "task_name", "No task is registered as 'tests.nope'"),
            ({"args": [1]}, "args", "missing a required argument"),
            ({"args": [1, 2, 3]}, "args", "too many positional"),
            ({"args": [1, 2], "kwargs": {"c": 3}}, "kwargs", "unexpected keyword"),
            ({"args": [1, math.nan]}, "args", "which JSON cannot represent"),
            ({"args": [1], "kwargs": {"b": {1, 2}}}, "kwargs", "cannot be stored as JSON"),
            ({"args": {"a": 1}}, "args", "must be a JSON list"),
            ({"kwargs": ["b"]}, "kwargs", "must be a JSON object"),
            ({"args": [1, 2], "kwargs": {"queue": "x"}}, "kwargs", "enqueue\\(\\) option"),
        ],
    )
    def test_bad_schedule_is_refused_on_its_field(self, fields, field, message):
        values = {"task": "tests.add", "cron": "0 2 * * *", "tz": "Europe/Berlin",
                  "args": [1, 2], "kwargs": {}, **fields}
        with pytest.raises(ValidationError) as exc:
            create_schedule("bad", values["task"], values["cron"], values["tz"],
                            args=values["args"], kwargs=values["kwargs"])
        assert set(exc.value.message_dict) == {field}
        assert any(re.search(message, m) for m in exc.value.message_dict[field])
        assert Schedule.objects.count() == 0

    def test_every_save_path_validates(self):
        with pytest.raises(ValidationError) as exc:
            Schedule.objects.create(name="x", task_name="tests.nope", cron="nonsense",
                                    time_zone="Mars/Olympus")
        assert set(exc.value.message_dict) == {"task_name", "cron", "time_zone"}
        s = create_schedule("ok", "tests.noop", "*/5 * * * *", "UTC")
        s.cron = "61 * * * *"
        with pytest.raises(ValidationError, match="cron"):
            s.save()
        s.refresh_from_db()
        assert s.cron == "*/5 * * * *"

    def test_jitter_is_bounded_by_the_model_on_every_database(self):
        """A week at most, checked before any SQL (SQLite enforces no integer range)."""
        s = create_schedule("ok", "tests.noop", "*/5 * * * *", "UTC")
        s.jitter_seconds = MAX_JITTER_SECONDS
        s.save()
        s.jitter_seconds = MAX_JITTER_SECONDS + 1
        with pytest.raises(ValidationError, match="less than or equal to"):
            s.save()
        s.refresh_from_db()
        assert s.jitter_seconds == MAX_JITTER_SECONDS

    def test_valid_schedule_is_normalized_and_planned(self):
        before = timezone.now()
        s = create_schedule("ok", "tests.add", "  0   2 * * *", "Europe/Berlin", args=[1],
                            kwargs={"b": 2})
        assert s.cron == "0 2 * * *"
        assert str(s) == "ok (0 2 * * * Europe/Berlin)"
        assert before < s.next_run_at <= before + timedelta(days=1)
        assert s.next_run_at.astimezone(ZoneInfo("Europe/Berlin")).hour == 2
        assert s.next_run_at.utcoffset() == timedelta(0)

    def test_disable_clears_and_enable_replans_from_now(self):
        s = make(due=T0)
        s.enabled = False
        s.save()
        assert s.next_run_at is None
        s.enabled = True
        s.save()
        assert s.next_run_at > timezone.now()  # the pause is not downtime to catch up

    def test_changing_the_cron_replans(self):
        s = make(due=T0)
        s.name = "renamed"
        s.save()
        s.refresh_from_db()
        assert s.next_run_at == T0  # timing unchanged: the due time stands
        s.cron = "30 * * * *"
        s.save()
        assert s.next_run_at > timezone.now() and s.next_run_at.minute == 30


class TestFiringAcrossDst:
    @pytest.mark.parametrize(
        ("tz", "cron", "day", "expected_utc"),
        [
            ("Europe/Berlin", "0 2 * * *", date(2026, 3, 29),
             [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]),
            ("Europe/Berlin", "0 2 * * *", date(2026, 10, 25),
             [datetime(2026, 10, 25, 0, 0, tzinfo=UTC)]),
            ("America/New_York", "0 2 * * *", date(2026, 3, 8),
             [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]),
            ("America/New_York", "30 1 * * *", date(2026, 11, 1),
             [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]),
        ],
    )
    def test_fire_due_across_the_change_day_makes_one_job(self, tz, cron, day, expected_utc):
        """Ticking every 5 minutes through the whole local day, as a cluster would."""
        zone = ZoneInfo(tz)
        midnight = datetime.combine(day, datetime.min.time(), zone)
        s = create_schedule("nightly", "tests.noop", cron, tz)
        Schedule.objects.filter(pk=s.pk).update(next_run_at=next_run_after(cron, tz, midnight))
        now = midnight
        while now.astimezone(zone).date() == day:
            fire_due(now=now)
            now += timedelta(minutes=5)
        fired = sorted(j.idempotency_key.split(":", 2)[2] for j in jobs_of(s))
        assert fired == [t.isoformat() for t in expected_utc]
        s.refresh_from_db()
        next_local = s.next_run_at.astimezone(zone)
        assert next_local.date() == day + timedelta(days=1)
        minute, hour = cron.split()[:2]
        assert (next_local.hour, next_local.minute) == (int(hour), int(minute))


class TestFiring:
    def test_on_time_fires_one_job_and_advances(self):
        s = make(task="tests.add", args=[1], kwargs={"b": 2}, due=T0)
        now = T0 + timedelta(seconds=1)
        assert fire_due(now=now) == 1
        job = jobs_of(s).get()
        assert job.idempotency_key == f"schedule:{s.pk}:2026-01-05T10:00:00+00:00"
        assert (job.task_name, job.args, job.kwargs) == ("tests.add", [1], {"b": 2})
        assert job.status == JobStatus.QUEUED
        s.refresh_from_db()
        assert s.next_run_at == T0 + timedelta(hours=1)
        assert (s.last_run_at, s.last_job_id, s.last_error) == (now, job.pk, "")
        assert fire_due(now=now) == 0  # nothing due any more
        assert jobs_of(s).count() == 1

    def test_not_due_and_disabled_do_not_fire(self):
        make(name="future", due=T0 + timedelta(minutes=1))
        off = make(name="off", due=T0)
        Schedule.objects.filter(pk=off.pk).update(enabled=False)
        assert fire_due(now=T0 + timedelta(seconds=1)) == 0
        assert Job.objects.count() == 0

    def test_a_stale_claim_loses_and_enqueues_nothing(self):
        s = make(due=T0)
        stale = Schedule.objects.get(pk=s.pk)
        assert fire(s, T0) is Outcome.ENQUEUED
        assert fire(stale, T0) is Outcome.LOST_CLAIM
        assert Job.objects.count() == 1

    def test_even_a_double_claim_makes_one_job(self):
        s = make(due=T0)
        fire_due(now=T0)
        # Simulate a claim that went through twice (e.g. a restored row).
        Schedule.objects.filter(pk=s.pk).update(next_run_at=T0)
        fire_due(now=T0)
        assert jobs_of(s).count() == 1

    def test_a_task_that_disappeared_is_recorded_and_others_still_fire(self, caplog):
        broken = make(name="broken", due=T0)
        Schedule.objects.filter(pk=broken.pk).update(task_name="tests.removed")
        fine = make(name="fine", due=T0)
        with caplog.at_level(logging.ERROR, logger="jobs.schedules"):
            assert fire_due(now=T0) == 1
        broken.refresh_from_db()
        assert "tests.removed" in broken.last_error
        assert broken.next_run_at == T0 + timedelta(hours=1)  # no retry storm
        assert jobs_of(broken).count() == 0 and jobs_of(fine).count() == 1
        assert "could not enqueue" in caplog.text

    def test_jitter_delays_the_job_but_not_the_claim(self):
        s = make(due=T0, jitter_seconds=30)
        before = timezone.now()
        fire_due(now=T0)
        job = jobs_of(s).get()
        assert before <= job.run_after <= timezone.now() + timedelta(seconds=30)
        assert job.idempotency_key.endswith("T10:00:00+00:00")



@pytest.mark.django_db(transaction=True)
def test_two_schedulers_racing_for_100_due_times_make_100_jobs(on_postgres):
    s = make(name="race", cron="* * * * *", due=T0, overlap_policy=OverlapPolicy.ALLOW)
    enqueued = race(lambda i, minute: fire_due(now=T0 + timedelta(minutes=minute, seconds=1)),
                    rounds=100)
    assert jobs_of(s).count() == 100
    # Each due time was claimed exactly once: no enqueue even hit the idempotency key.
    assert sum(enqueued[0]) + sum(enqueued[1]) == 100
    expected = {f"schedule:{s.pk}:{(T0 + timedelta(minutes=m)).isoformat()}" for m in range(100)}
    assert set(jobs_of(s).values_list("idempotency_key", flat=True)) == expected
    s.refresh_from_db()
    assert s.next_run_at == T0 + timedelta(minutes=100)


class TestMisfire:
    DOWN_UNTIL = T0 + timedelta(hours=3, minutes=5)  # 10:00 to 13:05 missed 10, 11, 12, 13

    def test_run_once_catches_up_with_exactly_one_job(self):
        s = make(due=T0, misfire_policy=MisfirePolicy.RUN_ONCE)
        assert fire_due(now=self.DOWN_UNTIL) == 1
        assert fire_due(now=self.DOWN_UNTIL + timedelta(seconds=30)) == 0
        job = jobs_of(s).get()
        assert job.idempotency_key.endswith("T13:00:00+00:00")  # the latest missed time
        s.refresh_from_db()
        assert s.next_run_at == T0 + timedelta(hours=4)

    def test_skip_makes_no_job_and_waits_for_the_next_future_time(self, caplog):
        s = make(due=T0, misfire_policy=MisfirePolicy.SKIP)
        with caplog.at_level(logging.WARNING, logger="jobs.schedules"):
            assert fire_due(now=self.DOWN_UNTIL) == 0
        assert jobs_of(s).count() == 0
        s.refresh_from_db()
        assert s.next_run_at == T0 + timedelta(hours=4)
        assert s.next_run_at > self.DOWN_UNTIL
        assert "missed" in caplog.text
        assert fire_due(now=T0 + timedelta(hours=4, seconds=1)) == 1  # back on schedule

    def test_skip_still_fires_the_current_time_when_it_is_on_time(self):
        s = make(due=T0, misfire_policy=MisfirePolicy.SKIP)
        fire_due(now=T0 + timedelta(hours=3, seconds=20))
        assert jobs_of(s).get().idempotency_key.endswith("T13:00:00+00:00")


class TestOverlap:
    def test_skip_while_the_previous_job_is_queued_or_running(self):
        s = make(cron="* * * * *", due=T0, overlap_policy=OverlapPolicy.SKIP)
        assert fire_due(now=T0) == 1
        first = jobs_of(s).get()
        assert fire_due(now=T0 + timedelta(minutes=1)) == 0  # still queued
        claimed = transitions.claim(first.pk, worker_host="h", worker_pid=1, lease_seconds=30)
        assert fire_due(now=T0 + timedelta(minutes=2)) == 0  # running
        s.refresh_from_db()
        assert s.next_run_at == T0 + timedelta(minutes=3)  # advanced all the same
        assert jobs_of(s).count() == 1
        transitions.succeed(claimed, None)
        assert fire_due(now=T0 + timedelta(minutes=3)) == 1
        assert jobs_of(s).count() == 2

    def test_a_run_now_job_counts_as_the_previous_job(self):
        s = make(cron="* * * * *", due=T0, overlap_policy=OverlapPolicy.SKIP)
        run_now(s)
        assert fire_due(now=T0) == 0

    def test_allow_enqueues_beside_an_unfinished_job(self):
        s = make(cron="* * * * *", due=T0, overlap_policy=OverlapPolicy.ALLOW)
        assert fire_due(now=T0) == 1
        assert fire_due(now=T0 + timedelta(minutes=1)) == 1
        assert list(jobs_of(s).values_list("status", flat=True)) == [JobStatus.QUEUED] * 2


@pytest.mark.django_db(transaction=True)
def test_the_maintenance_thread_fires_a_due_schedule_within_a_few_ticks():
    """The cluster's maintenance thread, started as a broker would, fires on its own."""
    due = timezone.now() - timedelta(seconds=1)
    s = make(name="tick", cron="* * * * *", due=due)
    stop = threading.Event()
    thread = threading.Thread(target=maintenance.run_forever, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: jobs_of(s).exists(), timeout=5)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    s.refresh_from_db()
    assert s.last_job_id == jobs_of(s).get().pk
    # Planned again: the next whole minute after it fired (not "after now": the assert
    # may run a second past a minute's turn, when that next run is already due).
    assert due < s.next_run_at <= due + timedelta(seconds=70)
    assert s.next_run_at.second == 0 and s.next_run_at.microsecond == 0
