"""Malformed requests to the admin, the dashboard and the status API are a 400 or a form
error, never a 500; every state-changing action checks its own permission; no redirect
goes to a URL taken from the request."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from jobs.models import Job, Schedule
from jobs.scheduling.firing import create_schedule
from tests.factories import DeadLetterFactory, JobFactory, StaffFactory

pytestmark = pytest.mark.django_db
JOBS = reverse("admin:jobs_job_changelist")
LETTERS = reverse("admin:jobs_deadletter_changelist")
SCHEDULES = reverse("admin:jobs_schedule_changelist")
NUL = "a\x00b"


def staff_with(*codenames):
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def superuser_client(client):
    client.force_login(StaffFactory(username="root", is_superuser=True))
    client.raise_request_exception = False  # a 500 would show as a 500, not as a raise
    return client


@pytest.mark.parametrize("url", [JOBS, LETTERS, SCHEDULES,
                                 reverse("admin:jobs_attempt_changelist"),
                                 reverse("admin:jobs_step_changelist")])
@pytest.mark.parametrize("query", [{"queue": NUL}, {"status__exact": NUL}, {"q": NUL},
                                   {"task": NUL}, {"q": "x" * 100_001}])
def test_admin_lists_refuse_unstorable_query_values_with_400(superuser_client, url, query):
    assert superuser_client.get(url, query).status_code == 400


def test_invalid_utf8_in_a_url_arrives_as_replacement_characters_not_a_500(superuser_client):
    response = superuser_client.get(JOBS + "?task=%ED%A0%80")  # an encoded lone surrogate
    assert response.status_code == 200


def test_a_forged_admin_action_with_a_selected_id_that_is_no_id_is_a_400(superuser_client):
    DeadLetterFactory()
    response = superuser_client.post(LETTERS, {
        "action": "resolve_selected", "index": 0, "_selected_action": ["abc"]})
    assert response.status_code == 400


def test_a_nul_in_a_dead_letter_note_is_a_400_and_nothing_is_resolved(superuser_client):
    letter = DeadLetterFactory()
    response = superuser_client.post(LETTERS, {
        "action": "resolve_selected", "index": 0, "_selected_action": [str(letter.pk)],
        "confirm": "yes", "note": NUL})
    assert response.status_code == 400
    letter.refresh_from_db()
    assert letter.resolved_at is None


def test_schedule_arguments_with_a_nul_are_a_form_error(superuser_client):
    response = superuser_client.post(reverse("admin:jobs_schedule_add"), {
        "name": "s", "task_name": "tests.add", "args": json.dumps(["a\u0000b", 1]),
        "kwargs": "{}", "cron": "* * * * *", "time_zone": "UTC", "enabled": "on",
        "overlap_policy": "skip", "misfire_policy": "run_once", "jitter_seconds": 0})
    assert response.status_code == 200
    assert "NUL character" in response.content.decode()
    assert not Schedule.objects.exists()


def test_deeply_nested_step_limits_are_a_form_error_on_both_screens(superuser_client):
    from tests.ui.dashboard.factories import StepFactory

    step = StepFactory(limits={"max_rows": 5})
    deep = "[" * 100_000 + "]" * 100_000
    dashboard = superuser_client.post(
        reverse("dashboard:step-limits", args=[step.job_id, step.pk]), {"limits": deep})
    assert dashboard.status_code == 400
    admin_page = superuser_client.post(
        reverse("admin:jobs_step_change", args=[step.pk]), {"limits": deep[:9_000]})
    assert admin_page.status_code == 200 and "nested too deeply" in admin_page.content.decode()
    step.refresh_from_db()
    assert step.limits == {"max_rows": 5}


@pytest.mark.parametrize("url", ["dashboard:jobs", "dashboard:overview"])
def test_dashboard_refuses_unstorable_query_values_with_400(superuser_client, url):
    assert superuser_client.get(reverse(url), {"q": NUL}).status_code == 400


def test_status_api_answers_malformed_input_with_a_json_400(superuser_client):
    job = JobFactory()
    response = superuser_client.get(reverse("jobs_api:job-status", args=[job.pk]), {"x": NUL})
    assert response.status_code == 400 and "NUL character" in response.json()["error"]


def test_a_refused_dashboard_action_never_redirects_to_the_referer(client):
    client.force_login(staff_with("cancel_job", "view_job"))
    response = client.post(reverse("dashboard:action", args=["cancel"]),
                           {"ids": ["not-a-uuid"], "filters": "status=queued"},
                           HTTP_REFERER="https://evil.example/phish")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('dashboard:jobs')}?status=queued"


class TestRunScheduleNow:
    def schedule(self):
        return create_schedule("nightly", "tests.noop", "0 2 * * *", "UTC")

    def post(self, client, schedule):
        return client.post(SCHEDULES, {"action": "run_now_selected", "index": 0,
                                       "_selected_action": [str(schedule.pk)]})

    def test_view_only_staff_is_not_offered_the_action_and_a_forged_post_is_403(self, client):
        schedule = self.schedule()
        client.force_login(staff_with("view_schedule"))
        page = client.get(SCHEDULES)
        assert page.status_code == 200 and "run_now_selected" not in page.content.decode()
        assert self.post(client, schedule).status_code == 403
        assert not Job.objects.exists()

    def test_staff_who_may_change_schedules_runs_it_once(self, client):
        schedule = self.schedule()
        client.force_login(staff_with("view_schedule", "change_schedule"))
        assert self.post(client, schedule).status_code == 302
        job = Job.objects.get()
        assert job.task_name == "tests.noop" and job.idempotency_key.startswith(
            f"schedule:{schedule.pk}:now:")
