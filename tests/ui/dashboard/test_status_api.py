"""GET /api/jobs/<uuid>/status/: its shape in every state, and who may read it."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, JobStatus
from jobs.ops import presentation
from jobs.worker.runner import run_job
from tests.factories import JobFactory, StaffFactory, UserFactory
from tests.ui.dashboard.factories import staff_with

pytestmark = pytest.mark.django_db
S = JobStatus
KEYS = {"id", "status", "status_label", "terminal", "progress", "steps", "result", "error",
        "attempts", "created_at", "started_at", "finished_at", "next_attempt_at"}


def url(job_id) -> str:
    return reverse("jobs_api:job-status", args=[job_id])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner():
    return UserFactory(username="owner")


def claim(job):
    return transitions.claim(job.pk, worker_host="web", worker_pid=1, lease_seconds=60)


def read(client, job) -> dict:
    response = client.get(url(job.pk))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert set(body) == KEYS
    assert body["id"] == str(job.pk)
    return body


def test_queued(owner):
    job = enqueue("demo.import_catalog", "feed.csv", enqueued_by=owner)
    body = read(client_for(owner), job)
    assert body["status"] == "queued" and body["terminal"] is False
    assert body["steps"][0] == {"name": "download", "status": "pending"}
    assert len(body["steps"]) == 5
    assert body["progress"]["steps_done"] == 0 and body["progress"]["steps_planned"] == 5
    assert body["result"] is None and body["error"] is None
    assert body["attempts"] == {"count": 0, "max": 1}
    assert body["created_at"] and body["started_at"] is None and body["finished_at"] is None


def test_running_with_progress(owner):
    from jobs.models import Step, StepStatus

    job = enqueue("demo.import_catalog", "feed.csv", enqueued_by=owner)
    claim(job)
    Step.objects.filter(job=job, name="download").update(status=StepStatus.SUCCEEDED)
    Step.objects.filter(job=job, name="validate").update(
        status=StepStatus.RUNNING, progress_current=300, progress_total=1200)
    body = read(client_for(owner), job)
    assert body["status"] == "running" and body["terminal"] is False
    assert body["started_at"] is not None
    assert body["progress"]["current_step"] == "validate"
    assert body["progress"]["current_progress"] == {"current": 300, "total": 1200, "message": ""}
    assert body["progress"]["fraction"] == pytest.approx((1 + 0.25) / 5)
    assert body["attempts"]["count"] == 1


def test_succeeded_carries_the_result(owner):
    job = enqueue("demo.add", 2, 3, enqueued_by=owner)
    assert run_job(job.pk) == S.SUCCEEDED
    body = read(client_for(owner), job)
    assert body["status"] == "succeeded" and body["terminal"] is True
    assert body["result"] == 5 and body["error"] is None
    assert body["finished_at"] is not None and body["steps"] == []


def test_retrying_carries_the_error_and_the_next_attempt(owner):
    job = enqueue("demo.add", 2, 3, enqueued_by=owner)
    retry_at = timezone.now() + timedelta(minutes=5)
    transitions.fail(claim(job), ErrorInfo("ConnectionError", "upstream timed out"),
                     retry_at=retry_at)
    body = read(client_for(owner), job)
    assert body["status"] == "retrying" and body["terminal"] is False
    assert body["error"] == "ConnectionError: upstream timed out"
    # retry_at's delay, from the database's clock (issue 22): what the row says.
    assert body["next_attempt_at"] == Job.objects.get(pk=job.pk).run_after.isoformat()
    assert abs(datetime.fromisoformat(body["next_attempt_at"]) - retry_at) < timedelta(seconds=1)
    assert body["result"] is None


def test_dead_carries_the_error(owner):
    job = enqueue("demo.import_catalog", "feed.csv", max_rows=10, enqueued_by=owner)
    assert run_job(job.pk) == S.DEAD
    body = read(client_for(owner), job)
    assert body["status"] == "dead" and body["terminal"] is True
    assert "exceed the transform limit max_rows=10" in body["error"]
    assert [s["status"] for s in body["steps"]] == ["succeeded", "succeeded", "failed",
                                                    "pending", "pending"]


def test_cancelled(owner):
    job = enqueue("demo.add", 1, 1, enqueued_by=owner)
    transitions.cancel([job.pk])
    body = read(client_for(owner), job)
    assert body["status"] == "cancelled" and body["terminal"] is True
    assert body["error"] is None and body["result"] is None


@pytest.mark.parametrize("status", list(S))
def test_the_status_label_is_the_one_the_screens_show(status):
    """A frontend built on the API says what the dashboard and the admin say."""
    job = JobFactory(status=status)
    staff = client_for(StaffFactory(is_superuser=True))  # may open the admin too
    body = read(staff, job)
    label, _ = presentation.status_info(status)
    assert body["status_label"] == label
    dot = presentation.status_dot(status)
    assert f'<span class="status-label">{label}</span>' in dot
    for screen in (reverse("dashboard:job", args=[job.pk]),
                   reverse("admin:jobs_job_change", args=[job.pk])):
        assert dot in staff.get(screen).content.decode()


def test_owner_and_staff_may_read_others_get_the_same_404_as_a_missing_job(owner):
    job = enqueue("demo.add", 1, 1, enqueued_by=owner)
    assert client_for(owner).get(url(job.pk)).status_code == 200
    assert client_for(staff_with("view_job")).get(url(job.pk)).status_code == 200
    # Result and error are job data: staff without jobs.view_job are strangers here.
    assert client_for(StaffFactory()).get(url(job.pk)).status_code == 404
    stranger = client_for(UserFactory())
    hidden = stranger.get(url(job.pk))
    missing = stranger.get(url(uuid.uuid4()))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content  # nothing tells the two apart


def test_a_job_without_an_owner_is_readable_by_staff_with_view_job_only():
    job = enqueue("demo.add", 1, 1)
    assert client_for(UserFactory()).get(url(job.pk)).status_code == 404
    assert client_for(StaffFactory()).get(url(job.pk)).status_code == 404
    assert client_for(staff_with("view_job")).get(url(job.pk)).status_code == 200


def test_anonymous_callers_get_401_json():
    job = enqueue("demo.add", 1, 1)
    response = Client().get(url(job.pk))
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required."}


def test_the_demo_view_answers_202_with_the_status_url(owner):
    client = client_for(owner)
    response = client.post(reverse("demo:start-report", args=[7]))
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"] == url(body["job_id"]) == response["Location"]
    assert client.get(body["status_url"]).json()["status"] == "queued"
