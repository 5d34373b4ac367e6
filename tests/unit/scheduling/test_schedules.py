import logging
import math
import re
import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.models import (
    Attempt,
    AttemptStatus,
    DeadLetter,
    Job,
    JobStatus,
    MisfirePolicy,
    OperationKey,
    OverlapPolicy,
    Schedule,
)
from jobs.scheduling.builtins import BUILTINS, alert_dead_letters, purge_finished
from jobs.scheduling.cron import format_run, last_run_at_or_before, next_run_after, upcoming
from jobs.scheduling.firing import Outcome, create_schedule, fire, fire_due, run_now
from jobs.worker import maintenance
from jobs.worker.runner import run_job
from tests.cluster import wait_for
from tests.factories import AttemptFactory, DeadLetterFactory, JobFactory
from tests.racing import race

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def make(name="s", task="tests.noop", cron="0 * * * *", tz="UTC", due=T0, **fields):
    """A schedule whose next due time is `due` (as if it had been planned long ago)."""
    schedule = create_schedule(name, task, cron, tz, **fields)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    schedule.refresh_from_db()
    return schedule


def jobs_of(schedule):
    return Job.objects.filter(idempotency_key__startswith=f"schedule:{schedule.pk}:")


def local(when, tz):
    return when.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


class TestTimeZonesAndDst:
    @pytest.mark.parametrize(
        ("tz", "day", "substitute_utc"),
        [
            # 02:00 does not exist: the clock jumps from 02:00 to 03:00 local.
            ("Europe/Berlin", date(2026, 3, 29), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
            ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        ],
    )
    def test_spring_forward_fires_once_at_the_first_instant_after_the_gap(
        self, tz, day, substitute_utc
    ):
        start = datetime.combine(day - timedelta(days=2), datetime.min.time(), ZoneInfo(tz))
        runs = upcoming("0 2 * * *", tz, 5, after=start)
        assert [local(r, tz) for r in runs] == [
            datetime.combine(day - timedelta(days=2), datetime.min.time()).replace(hour=2),
            datetime.combine(day - timedelta(days=1), datetime.min.time()).replace(hour=2),
            datetime.combine(day, datetime.min.time()).replace(hour=3),  # the substitute
            datetime.combine(day + timedelta(days=1), datetime.min.time()).replace(hour=2),
            datetime.combine(day + timedelta(days=2), datetime.min.time()).replace(hour=2),
        ]
        assert runs[2] == substitute_utc
        assert all(r.tzinfo is UTC for r in runs)

    @pytest.mark.parametrize(
        ("tz", "cron", "day", "first_utc"),
        [
            # 02:00-03:00 happens twice in Berlin, 01:00-02:00 twice in New York.
            ("Europe/Berlin", "0 2 * * *", date(2026, 10, 25),
             datetime(2026, 10, 25, 0, 0, tzinfo=UTC)),
            ("America/New_York", "30 1 * * *", date(2026, 11, 1),
             datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ],
    )
    def test_fall_back_fires_once_at_the_first_occurrence(self, tz, cron, day, first_utc):
        start = datetime.combine(day - timedelta(days=1), datetime.min.time(), ZoneInfo(tz))
        runs = upcoming(cron, tz, 3, after=start)
        on_the_day = [r for r in runs if r.astimezone(ZoneInfo(tz)).date() == day]
        assert on_the_day == [first_utc]
        # The local wall time is the same on all three days, on both sides of the change.
        assert len({local(r, tz).time() for r in runs}) == 1
        assert runs[1] - runs[0] == timedelta(hours=24)
        assert runs[2] - runs[1] == timedelta(hours=25)  # the day with the extra hour

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

    def test_last_run_mirrors_next_run(self):
        tz = "Europe/Berlin"
        at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
        assert last_run_at_or_before("0 2 * * *", tz, at) == datetime(2026, 3, 29, 1, 0,
                                                                        tzinfo=UTC)
        assert last_run_at_or_before("0 * * * *", "UTC", T0) == T0

    def test_naive_datetimes_are_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            next_run_after("0 * * * *", "UTC", datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="timezone-aware"):
            fire_due(now=datetime(2026, 1, 1))


    @pytest.mark.parametrize("zone", ["UTC", "Etc/UTC"])
    def test_a_utc_schedule_says_its_time_once(self, zone):
        when = datetime(2026, 6, 1, 21, 15, tzinfo=UTC)
        assert format_run(when, zone) == "2026-06-01 21:15 UTC"

    @pytest.mark.parametrize(("zone", "expected"), [
        ("Europe/Berlin", "2026-06-01 23:15 CEST (Europe/Berlin) = 2026-06-01 21:15 UTC"),
        # Zero offset but another zone's name: both are said, the zone is not UTC in winter.
        ("Europe/London", "2026-01-01 21:15 GMT (Europe/London) = 2026-01-01 21:15 UTC"),
    ])
    def test_another_zone_shows_local_time_then_utc(self, zone, expected):
        month = 1 if zone == "Europe/London" else 6
        when = datetime(2026, month, 1, 21, 15, tzinfo=UTC)
        assert format_run(when, zone) == expected


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


def form_data(**overrides):
    return {
        "name": "nightly", "task_name": "tests.add", "args": "[1, 2]", "kwargs": "{}",
        "cron": "0 2 * * *", "time_zone": "Europe/Berlin", "enabled": "on",
        "overlap_policy": "skip", "misfire_policy": "run_once", "jitter_seconds": "0",
        **overrides,
    }


class TestAdmin:
    def test_preview_shows_five_runs_in_local_time_and_utc_and_saves_nothing(
        self, admin_client
    ):
        response = admin_client.post(reverse("admin:jobs_schedule_add"),
                                      form_data(_preview="1"))
        assert response.status_code == 200
        html = response.content.decode()
        expected = upcoming("0 2 * * *", "Europe/Berlin", 5)
        for when in expected:
            berlin = when.astimezone(ZoneInfo("Europe/Berlin"))
            assert f"{berlin:%Y-%m-%d %H:%M %Z} (Europe/Berlin) = {when:%Y-%m-%d %H:%M} UTC" in html
        assert "Preview only, nothing saved" in html
        assert response.context["adminform"].form.preview == expected
        assert Schedule.objects.count() == 0

    def test_save_after_preview(self, admin_client):
        page = admin_client.get(reverse("admin:jobs_schedule_add")).content.decode()
        assert 'name="_preview"' in page and '<option value="tests.add">' in page
        response = admin_client.post(reverse("admin:jobs_schedule_add"), form_data())
        assert response.status_code == 302
        s = Schedule.objects.get(name="nightly")
        assert (s.args, s.kwargs, s.time_zone) == ([1, 2], {}, "Europe/Berlin")
        assert s.next_run_at > timezone.now()

    def test_change_page_previews_the_saved_schedule_and_lists_it(self, admin_client):
        s = create_schedule("nightly", "tests.noop", "0 2 * * *", "America/New_York")
        page = admin_client.get(reverse("admin:jobs_schedule_change", args=[s.pk]))
        assert len(page.context["adminform"].form.preview) == 5
        changed = admin_client.post(reverse("admin:jobs_schedule_change", args=[s.pk]),
                                     form_data(task_name="tests.noop", args="[]",
                                               cron="0 4 * * *", _preview="1"))
        assert changed.status_code == 200
        assert all(t.astimezone(ZoneInfo("Europe/Berlin")).hour == 4
                   for t in changed.context["adminform"].form.preview)
        s.refresh_from_db()
        assert s.cron == "0 2 * * *"  # previewed, not saved
        listing = admin_client.get(reverse("admin:jobs_schedule_changelist")).content.decode()
        assert "0 2 * * * (America/New_York)" in listing

    def test_run_now_action(self, admin_client):
        s = create_schedule("nightly", "tests.noop", "0 2 * * *", "UTC")
        response = admin_client.post(
            reverse("admin:jobs_schedule_changelist"),
            {"action": "run_now_selected", "_selected_action": [s.pk]}, follow=True,
        )
        job = jobs_of(s).get()
        assert [str(m) for m in response.context["messages"]] == [
            f"nightly: enqueued job {job.pk}"
        ]

    @pytest.mark.parametrize(
        ("overrides", "field", "message"),
        [
            ({"cron": "61 * * * *"}, "cron", "Invalid cron expression"),
            ({"time_zone": "Berlin"}, "time_zone", "Unknown time zone"),
            ({"task_name": "jobs.nope"}, "task_name", "Select a valid choice"),
            ({"args": "[1]"}, "args", "missing a required argument"),
            ({"args": "[1, 2]", "kwargs": '{"c": 1}'}, "kwargs", "unexpected keyword"),
        ],
    )
    @pytest.mark.parametrize("preview", [True, False])
    def test_errors_are_shown_on_the_field(self, admin_client, overrides, field, message,
                                           preview):
        data = form_data(**overrides, **({"_preview": "1"} if preview else {}))
        response = admin_client.post(reverse("admin:jobs_schedule_add"), data)
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert set(errors) == {field}
        assert message in " ".join(errors[field])
        assert Schedule.objects.count() == 0


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


class TestCommands:
    def test_run_now_enqueues_once_and_leaves_the_timetable_alone(self):
        s = make(due=T0, overlap_policy=OverlapPolicy.ALLOW)
        out = StringIO()
        call_command("schedules", "run", "s", stdout=out)
        job = jobs_of(s).get()
        assert str(job.pk) in out.getvalue()
        assert ":now:" in job.idempotency_key
        s.refresh_from_db()
        assert s.next_run_at == T0 and s.last_job_id == job.pk
        fire_due(now=T0)  # the regular firing still happens, with its own key
        assert jobs_of(s).count() == 2

    def test_run_unknown_name(self):
        with pytest.raises(CommandError, match="No schedule named 'nope'"):
            call_command("schedules", "run", "nope")

    def test_list_shows_next_runs_in_the_schedule_zone_and_utc(self):
        s = create_schedule("nightly", "tests.noop", "0 2 * * *", "Europe/Berlin")
        make(name="off", enabled=False)
        out = StringIO()
        call_command("schedules", "list", "--count", "2", stdout=out)
        text = out.getvalue()
        assert "nightly  [enabled]  tests.noop  0 2 * * * (Europe/Berlin)" in text
        assert "off  [DISABLED]" in text
        first, second = s.next_run_at, next_run_after(s.cron, s.time_zone, s.next_run_at)
        for when in (first, second):
            assert f"{when:%Y-%m-%d %H:%M} UTC" in text
        assert text.count("next:") == 2

    def test_install_schedules_is_idempotent_and_keeps_operator_changes(self):
        call_command("install_schedules", stdout=StringIO())
        call_command("install_schedules", stdout=StringIO())
        names = set(Schedule.objects.values_list("name", flat=True))
        assert names == {b.name for b in BUILTINS} == {"jobs.purge_finished",
                                                      "jobs.dead_letter_alert"}
        purge = Schedule.objects.get(name="jobs.purge_finished")
        assert (purge.cron, purge.time_zone, purge.enabled) == ("30 3 * * *", "UTC", True)
        purge.cron = "0 5 * * *"
        purge.save()
        out = StringIO()
        call_command("install_schedules", stdout=out)
        assert "jobs.purge_finished: exists" in out.getvalue()
        assert Schedule.objects.get(name="jobs.purge_finished").cron == "0 5 * * *"
        call_command("install_schedules", "--reset", stdout=StringIO())
        assert Schedule.objects.get(name="jobs.purge_finished").cron == "30 3 * * *"
        assert Schedule.objects.count() == 2


NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class TestDeadLetterAlert:
    @pytest.fixture(autouse=True)
    def admins(self, settings):
        settings.ADMINS = [("Ops", "ops@example.com")]

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


@pytest.mark.slow
def test_fires_within_two_seconds_on_an_idle_cluster(cluster_factory):
    cluster = cluster_factory()
    warm = enqueue("tests.noop")  # proves the pusher, and so the maintenance thread, is up
    assert wait_for(lambda: Job.objects.get(pk=warm.pk).status == JobStatus.SUCCEEDED, 30), (
        cluster.log()
    )
    due = timezone.now() + timedelta(seconds=1)
    s = create_schedule("every-minute", "tests.noop", "* * * * *", "UTC", next_run_at=due)
    key = f"schedule:{s.pk}:{due.astimezone(UTC).isoformat()}"
    assert wait_for(lambda: Job.objects.filter(idempotency_key=key).exists(), 10,
                    interval=0.05), cluster.log()
    job = Job.objects.get(idempotency_key=key)
    assert due <= job.created_at <= due + timedelta(seconds=2), job.created_at - due
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 10)


@pytest.mark.django_db(transaction=True)
def test_the_maintenance_thread_fires_a_due_schedule_within_a_few_ticks():
    """The cluster's maintenance thread, started as a broker would, fires on its own."""
    s = make(name="tick", cron="* * * * *", due=timezone.now() - timedelta(seconds=1))
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
    assert s.next_run_at > timezone.now()
