"""/metrics: who may scrape, counters that move by exactly what happened (a rolled-back
enqueue counts nothing), and gauges read from the database."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs import enqueue
from jobs.models import Cluster, JobStatus
from jobs.worker.runner import run_job
from tests.factories import DeadLetterFactory, JobFactory, StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory())
    return client


def test_only_staff_or_the_token_may_scrape(client, settings):
    assert client.get("/metrics").status_code == 403
    settings.JOBS = {"METRICS_TOKEN": "s3cret"}
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    client.force_login(StaffFactory())
    assert client.get("/metrics").status_code == 200


def test_counters_move_by_what_happened(staff_client):
    before = scrape(staff_client)
    ok = enqueue("tests.add", 1, b=2)
    doomed = enqueue("tests.write_then_fail", "k")  # max_attempts=1: dead on its first failure
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("tests.add", 5, b=5)
        raise RuntimeError("rolled back: never enqueued")
    assert run_job(ok.pk) == JobStatus.SUCCEEDED
    assert run_job(doomed.pk) == JobStatus.DEAD
    after = scrape(staff_client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("jobs_enqueued_total", task="tests.add") == 1
    assert delta("jobs_enqueued_total", task="tests.write_then_fail") == 1
    assert delta("jobs_finished_total", task="tests.add", outcome="succeeded") == 1
    assert delta("jobs_finished_total", task="tests.write_then_fail", outcome="dead") == 1
    assert delta("jobs_attempt_duration_seconds_count", task="tests.add") == 1
    assert delta("jobs_queue_wait_seconds_count", task="tests.write_then_fail") == 1


def test_gauges_read_the_database(staff_client):
    now = timezone.now()
    JobFactory(status=JobStatus.QUEUED, queue="emails", run_after=now - timedelta(seconds=120))
    JobFactory(status=JobStatus.RUNNING, queue="emails")
    DeadLetterFactory()
    Cluster.objects.create(name="c", host="h", pid=1, workers=4, last_seen_at=now)
    Cluster.objects.create(name="old", host="h", pid=2, workers=4,
                           last_seen_at=now - timedelta(hours=1))
    samples = scrape(staff_client)
    assert value(samples, "jobs_active", status="queued", queue="emails") == 1
    assert value(samples, "jobs_active", status="running", queue="emails") == 1
    assert 120 <= value(samples, "jobs_oldest_due_wait_seconds", queue="emails") < 130
    assert value(samples, "jobs_dead_letters_unresolved") == 1
    assert value(samples, "jobs_clusters_alive") == 1
    assert value(samples, "jobs_workers_alive") == 4


def test_a_gauge_names_each_unserved_queue(staff_client):
    now = timezone.now()
    Cluster.objects.create(name="c", host="h", pid=1, workers=2, queues=["default"],
                           last_seen_at=now)
    JobFactory(queue="default", run_after=now - timedelta(seconds=5))
    JobFactory(queue="reports", run_after=now - timedelta(seconds=5))
    JobFactory(queue="later", run_after=now + timedelta(hours=1))
    samples = scrape(staff_client)
    unserved = {labels: v for (name, labels), v in samples.items()
                if name == "jobs_queue_unserved"}
    assert unserved == {(("queue", "reports"),): 1.0}
    # Served: the series goes away (absent, not 0), so `jobs_queue_unserved > 0` clears.
    Cluster.objects.create(name="r", host="h", pid=2, workers=2, queues=["reports"],
                           last_seen_at=now)
    assert not [k for k in scrape(staff_client) if k[0] == "jobs_queue_unserved"]
