"""Unserved queues (jobs.ops.serving): due jobs that no live cluster serves, said once.

The rule: a queue with due jobs (queued or retrying, run_after passed) is unserved
unless a live cluster (jobs.core.clusters.alive) lists it; a paused queue never is.
"""

import logging
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from jobs.core import figures, queues
from jobs.models import Cluster, JobStatus
from jobs.ops import serving, stats
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
S = JobStatus


def cluster(queues_=("default",), seconds_ago: float = 1.0, stopped: bool = False) -> Cluster:
    now = timezone.now()
    return Cluster.objects.create(
        name="c", host="h", pid=1, queues=list(queues_), workers=2,
        last_seen_at=now - timedelta(seconds=seconds_ago), stopped_at=now if stopped else None)


def due(queue: str, minutes_ago: float = 1.0, status: str = S.QUEUED):
    return JobFactory(queue=queue, status=status,
                      run_after=timezone.now() - timedelta(minutes=minutes_ago))


def names(found) -> list[str]:
    return [q.name for q in found]


def test_a_queue_no_cluster_serves_is_unserved_with_its_due_count_and_wait():
    cluster(["default"])
    due("default")
    due("reports", minutes_ago=5)
    due("reports", minutes_ago=1, status=S.RETRYING)
    [reports] = serving.unserved()
    assert reports.name == "reports" and reports.due == 2
    assert timedelta(minutes=5) <= reports.oldest_wait < timedelta(minutes=6)
    assert reports.command == "python manage.py qcluster --queues reports"


def test_a_queue_served_by_a_live_cluster_is_not_unserved():
    cluster(["default", "reports"])
    due("reports")
    assert serving.unserved() == []


@pytest.mark.parametrize("row", ["stale", "stopped"])
def test_a_stale_or_stopped_cluster_serves_nothing(settings, row):
    settings.JOBS = {"CLUSTER_REFRESH_SECONDS": 5.0}  # gone after 3 x 5 s
    cluster(["reports"], seconds_ago=16 if row == "stale" else 1, stopped=row == "stopped")
    due("reports")
    state = serving.state()
    assert names(state.unserved) == ["reports"] and state.clusters_alive == 0


def test_a_paused_queue_is_not_reported_as_unserved():
    due("reports")
    queues.pause("reports")
    assert serving.unserved() == []
    queues.resume("reports")
    assert names(serving.unserved()) == ["reports"]


def test_jobs_not_due_yet_and_running_or_finished_jobs_leave_a_queue_served():
    JobFactory(queue="later", run_after=timezone.now() + timedelta(minutes=10))
    JobFactory(queue="busy", status=S.RUNNING)
    JobFactory(queue="done", status=S.SUCCEEDED)
    JobFactory(queue="dead", status=S.DEAD)
    assert serving.unserved() == []


def test_due_is_judged_at_the_given_time():
    now = timezone.now()
    JobFactory(queue="reports", run_after=now + timedelta(minutes=10))
    assert serving.unserved(now) == []
    [q] = serving.unserved(now + timedelta(minutes=11))
    assert q.name == "reports" and q.oldest_wait == timedelta(minutes=1)


def test_two_queries_when_every_queue_is_served(django_assert_num_queries):
    cluster(["default"])
    for _ in range(5):
        due("default")
    with django_assert_num_queries(2):  # due jobs (and their clock), live clusters
        assert serving.unserved() == []


def test_the_pauses_are_read_only_when_a_queue_looks_unserved(django_assert_num_queries):
    for q in ("a", "b", "c"):
        due(q)
    with django_assert_num_queries(3):  # due jobs, live clusters, pauses: not one per queue
        assert names(serving.unserved(timezone.now())) == ["a", "b", "c"]


def test_the_overview_figures_and_the_warning_read_one_count():
    due("reports")
    JobFactory(queue="reports", run_after=timezone.now() + timedelta(hours=1))
    now = timezone.now()
    waiting = figures.waiting_by_queue(now)
    [row] = stats.queue_depths(now, waiting)
    [q] = serving.state(now, waiting).unserved
    assert (row["depth"], row["later"]) == (1, 1) and q.due == row["depth"]


# --- Said once per episode in a cluster's log ------------------------------------------


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "jobs.serving" and r.levelno == logging.WARNING]


def test_the_watch_warns_once_per_episode(caplog, settings):
    settings.JOBS = {"CLUSTER_REFRESH_SECONDS": 5.0}
    caplog.set_level(logging.INFO, logger="jobs.serving")
    watch = serving.UnservedWatch()
    job = due("reports")
    assert names(watch.check()) == ["reports"]
    assert watch.check() == [] and watch.check() == []
    [said] = warnings(caplog)
    assert "'reports' has 1 due job(s)" in said and "qcluster --queues reports" in said
    assert "JOBS['QUEUES']" in said

    # Served: said at INFO, and the episode ends.
    served = cluster(["reports"])
    assert watch.check() == []
    assert any("'reports' is served again" in r.getMessage() for r in caplog.records
               if r.levelno == logging.INFO)
    # Unserved again (the cluster went silent): a new episode, warned again.
    Cluster.objects.filter(pk=served.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=60))
    assert names(watch.check()) == ["reports"]
    assert len(warnings(caplog)) == 2
    # The job ran: nothing due, the episode ends without a warning.
    JobFactory._meta.model.objects.filter(pk=job.pk).update(status=S.SUCCEEDED)
    assert watch.check() == [] and watch.reported == set()
    assert len(warnings(caplog)) == 2


def test_the_watch_never_raises_when_the_database_fails(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="jobs.serving")

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection")

    watch = serving.UnservedWatch()
    watch.reported = {"reports"}
    monkeypatch.setattr(figures, "waiting_by_queue", down)  # the owner serving reads
    assert watch.check() == []
    assert watch.reported == {"reports"}  # an outage is not the end of an episode
    assert warnings(caplog) == []
