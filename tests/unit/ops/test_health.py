"""/healthz: 200 when a cluster was seen lately and nothing due waits too long; 503
otherwise, saying why, with counts only."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.core import queues
from jobs.models import Cluster, JobStatus
from tests.factories import DeadLetterFactory, JobFactory
from tests.framework import admins

pytestmark = pytest.mark.django_db


def cluster(seconds_ago: float = 1.0, stopped: bool = False) -> Cluster:
    now = timezone.now()
    return Cluster.objects.create(
        name="default", host="h", pid=1, queues=["default"], workers=2,
        last_seen_at=now - timedelta(seconds=seconds_ago),
        stopped_at=now if stopped else None)


def get(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_healthy_with_a_fresh_cluster_and_nothing_waiting(client):
    cluster()
    JobFactory(status=JobStatus.QUEUED, run_after=timezone.now() + timedelta(hours=1))
    status, body = get(client)
    assert status == 200 and body["healthy"] and body["clusters_seen"] == 1
    assert body["oldest_due_wait_seconds"] == 0 and body["problems"] == []


@pytest.mark.parametrize("row", [None, "silent", "stopped"])
def test_no_cluster_seen_lately_is_unhealthy(client, settings, row):
    settings.JOBS = {"HEALTH_CLUSTER_SECONDS": 30.0}
    if row == "silent":
        cluster(seconds_ago=31)
    elif row == "stopped":
        cluster(stopped=True)
    status, body = get(client)
    assert status == 503 and not body["healthy"]
    assert body["problems"] == ["no cluster seen in the last 30 s"]


def test_a_due_job_waiting_past_the_limit_is_unhealthy(client, settings):
    settings.JOBS = {"HEALTH_MAX_WAIT_SECONDS": 60.0}
    cluster()
    JobFactory(status=JobStatus.RETRYING, run_after=timezone.now() - timedelta(seconds=50))
    assert get(client)[0] == 200
    JobFactory(status=JobStatus.QUEUED, run_after=timezone.now() - timedelta(seconds=90))
    status, body = get(client)
    assert status == 503 and 90 <= body["oldest_due_wait_seconds"] < 100
    assert "the oldest due job has waited 9" in body["problems"][0]


def test_a_paused_queues_jobs_wait_on_an_operator_not_on_a_failure(client, settings):
    settings.JOBS = {"HEALTH_MAX_WAIT_SECONDS": 60.0}
    cluster()
    JobFactory(queue="emails", run_after=timezone.now() - timedelta(minutes=10))
    assert get(client)[0] == 503
    queues.pause("emails")
    status, body = get(client)
    assert status == 200 and body["paused_queues"] == 1
    assert body["oldest_unpaused_wait_seconds"] == 0  # the judged wait leaves it out
    assert 600 <= body["oldest_due_wait_seconds"] < 660  # the figure reports it (figures)
    assert "emails" not in json.dumps(body)  # open to anyone: counts only


def test_dead_letters_are_reported_not_judged(client):
    cluster()
    DeadLetterFactory()
    status, body = get(client)
    assert status == 200 and body["unresolved_dead_letters"] == 1


def test_only_get(client):
    assert client.post("/healthz").status_code == 405


def test_an_unhealthy_poll_is_a_warning_in_the_log_not_a_mail_to_the_admins(
        client, settings, caplog, mailoutbox):
    settings.ADMINS = admins("Ops", "ops@example.com")
    settings.JOBS = {"HEALTH_CLUSTER_SECONDS": 30.0}
    with caplog.at_level("WARNING", logger="django.request"):
        for _ in range(3):
            assert get(client)[0] == 503
    assert mailoutbox == []
    polls = [r for r in caplog.records if r.name == "django.request"]
    assert [r.levelname for r in polls] == ["WARNING"] * 3


def test_a_real_500_still_mails_the_admins(client, settings, mailoutbox, monkeypatch):
    """The control: the mail handler is live in this configuration, so the test above
    proves the health check's choice, not a silent logger."""
    from jobs.ops import health

    settings.ADMINS = admins("Ops", "ops@example.com")
    monkeypatch.setattr(health, "check", lambda: 1 / 0)
    client.raise_request_exception = False
    assert client.get("/healthz").status_code == 500
    assert len(mailoutbox) == 1


def test_a_queue_with_due_jobs_and_no_live_cluster_is_unhealthy_at_once(client):
    """No wait limit to reach first: those jobs would wait forever."""
    cluster()  # serves "default" only
    JobFactory(queue="default", run_after=timezone.now() - timedelta(seconds=1))
    JobFactory(queue="reports", run_after=timezone.now() - timedelta(seconds=1))
    status, body = get(client)
    assert status == 503 and body["unserved_queues"] == ["reports"]
    assert body["problems"] == [
        "queue 'reports' has 1 due job(s) and no live cluster serves it "
        "(start one with: python manage.py qcluster --queues reports)"]
    Cluster.objects.create(name="r", host="h", pid=2, queues=["reports"], workers=1)
    status, body = get(client)
    assert status == 200 and body["unserved_queues"] == [] and body["problems"] == []


def test_a_paused_queue_is_reported_as_paused_not_unserved(client):
    cluster()
    JobFactory(queue="reports", run_after=timezone.now() - timedelta(seconds=1))
    queues.pause("reports")
    status, body = get(client)
    assert status == 200 and body["unserved_queues"] == [] and body["paused_queues"] == 1


def test_jobs_scheduled_for_later_in_an_unserved_queue_are_not_a_problem_yet(client):
    cluster()
    JobFactory(queue="reports", run_after=timezone.now() + timedelta(minutes=5))
    status, body = get(client)
    assert status == 200 and body["unserved_queues"] == []
