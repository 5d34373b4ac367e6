"""The schedule admin: previews in local time and UTC, saving, run now, errors on
the field."""

from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import (
    Schedule,
)
from jobs.scheduling.cron import upcoming
from jobs.scheduling.firing import create_schedule
from tests.schedules import jobs_of

pytestmark = pytest.mark.django_db


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
