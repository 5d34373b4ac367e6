"""`manage.py schedules` (list, run) and `manage.py install_schedules`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.models import (
    OverlapPolicy,
    Schedule,
)
from jobs.scheduling.builtins import BUILTINS
from jobs.scheduling.cron import next_run_after
from jobs.scheduling.firing import create_schedule, fire_due
from tests.schedules import T0, jobs_of, make

pytestmark = pytest.mark.django_db


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
