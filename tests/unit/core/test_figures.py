"""One owner per figure (jobs.core.figures): every page, endpoint and the broker give the
same queue depth, the same oldest due wait and the same row estimate for the same data,
a paused queue and a job not due yet included."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from dashboard import queries
from jobs.admin.base import EstimatedCountPaginator
from jobs.core import figures, queues
from jobs.models import Cluster, Job, JobStatus
from jobs.ops import health, lookups, stats
from jobs.ops import queues as queue_page
from jobs.worker.broker import JobTableBroker
from tests.factories import JobFactory, StaffFactory

pytestmark = pytest.mark.django_db
S = JobStatus
# Each consumer reads the database's clock with a statement of its own: their waits
# differ by the time between two statements, never by a rule.
CLOCKS_APART = 5.0


@pytest.fixture
def waiting_jobs():
    """`emails` paused with a job due 10 minutes ago; `default` served, with jobs due 3
    and 1 minutes ago, one due in an hour, one running and one finished."""
    now = timezone.now()
    Cluster.objects.create(name="c", host="h", pid=1, workers=2, queues=["default", "emails"],
                           last_seen_at=now)
    JobFactory(queue="emails", run_after=now - timedelta(minutes=10))
    queues.pause("emails")
    JobFactory(queue="default", run_after=now - timedelta(minutes=3))
    JobFactory(queue="default", status=S.RETRYING, run_after=now - timedelta(minutes=1))
    JobFactory(queue="default", run_after=now + timedelta(hours=1))  # not due yet
    JobFactory(queue="default", status=S.RUNNING, run_after=now - timedelta(hours=1))
    JobFactory(queue="default", status=S.SUCCEEDED, run_after=now - timedelta(hours=2))
    return {"emails": (1, 600.0), "default": (2, 180.0)}


def metrics(client) -> dict[tuple[str, str], float]:
    client.force_login(StaffFactory())
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, s.labels.get("queue", "")): s.value
            for family in text_string_to_metric_families(response.content.decode())
            for s in family.samples}


def test_every_consumer_gives_each_queue_the_same_depth(waiting_jobs, client):
    expected = {name: depth for name, (depth, _) in waiting_jobs.items()}
    owner = {name: r["due"] for name, r in figures.waiting_by_queue().items()}
    assert owner == expected  # paused queue counted, the job due later not
    assert {d["queue"]: d["depth"] for d in stats.queue_depths()} == expected
    assert {q.name: q.depth for q in queue_page.overview() if q.depth} == expected
    assert {d["queue"]: d["depth"] for d in queries.overview()["queues"]} == expected
    scraped = metrics(client)
    assert {q: int(scraped[("jobs_queue_depth", q)]) for q in expected} == expected
    for name, depth in expected.items():
        assert JobTableBroker(list_key=name, queues=[name]).queue_size() == depth
        assert figures.depth([name]) == depth
    assert JobTableBroker(list_key="both", queues=["default", "emails"]).queue_size() == 3


def test_every_consumer_gives_the_same_oldest_due_wait(waiting_jobs, client):
    expected = {name: wait for name, (_, wait) in waiting_jobs.items()}

    def agree(waits: dict[str, float]) -> None:
        assert set(waits) == set(expected)
        for name, wait in waits.items():
            assert expected[name] <= wait < expected[name] + CLOCKS_APART, name

    agree({n: r["wait"].total_seconds() for n, r in figures.waiting_by_queue().items()})
    agree({d["queue"]: d["oldest_age"].total_seconds() for d in stats.queue_depths()})
    agree({q.name: q.oldest_wait.total_seconds()
           for q in queue_page.overview() if q.oldest_wait})
    agree({d["queue"]: d["oldest_age"].total_seconds() for d in queries.overview()["queues"]})
    scraped = metrics(client)
    agree({q: scraped[("jobs_oldest_due_wait_seconds", q)] for q in expected})
    # Every queue's oldest, the paused one's included...
    oldest = max(expected.values())
    assert oldest <= stats.oldest_queued_age().total_seconds() < oldest + CLOCKS_APART
    report = health.check()
    assert oldest <= report["oldest_due_wait_seconds"] < oldest + CLOCKS_APART
    # ...and the judgement alone leaves the paused queue out.
    served = expected["default"]
    assert served <= report["oldest_unpaused_wait_seconds"] < served + CLOCKS_APART


def test_the_figures_at_a_given_time_are_exact(waiting_jobs):
    now = timezone.now() + timedelta(hours=2)  # the later job is due by then
    waiting = figures.waiting_by_queue(now)
    assert {n: r["due"] for n, r in waiting.items()} == {"emails": 1, "default": 3}
    assert {d["queue"]: d["oldest_age"] for d in stats.queue_depths(now)} == {
        n: r["wait"] for n, r in waiting.items()}
    assert stats.oldest_queued_age(now) == figures.oldest_wait(waiting)
    report = health.check(now)
    assert report["oldest_due_wait_seconds"] == round(
        figures.oldest_wait(waiting).total_seconds(), 3)


def test_every_consumer_reads_one_row_estimate(client, monkeypatch):
    for _ in range(7):
        JobFactory()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE jobs_job")
    estimate = figures.row_estimate(Job)
    assert estimate == (7 if connection.vendor == "postgresql" else None)
    assert metrics(client)[("jobs_estimated_rows", "")] == 7  # SQLite: counted
    monkeypatch.setattr(lookups, "COUNT_CAP", 5)
    paginator = EstimatedCountPaginator(Job.objects.order_by("pk"), 2)
    if estimate is None:  # no estimate: the admin counts, up to the cap
        assert paginator.count == 5 and paginator.is_capped and not paginator.is_estimate
    else:
        assert paginator.count == estimate and paginator.is_estimate
