import json
import pickle
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage

from jobs.models import Job, JobStatus
from jobs.worker.broker import JobTableBroker, execute_handed_over, package
from jobs.worker.reservation import reservation, reservation_size, reserve_due
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
S = JobStatus


@pytest.fixture(autouse=True)
def no_maintenance_thread(monkeypatch):
    monkeypatch.setattr(JobTableBroker, "run_maintenance", False)


def test_reserves_due_runnable_jobs_of_its_queue_best_first():
    now = timezone.now()
    low = JobFactory(priority=0, run_after=now - timedelta(seconds=5))
    high = JobFactory(priority=9, run_after=now)
    retry = JobFactory(status=S.RETRYING, run_after=now - timedelta(seconds=1))
    JobFactory(run_after=now + timedelta(minutes=1))  # not due
    JobFactory(queue="emails")  # other queue
    for status in (S.RUNNING, S.SUCCEEDED, S.DEAD, S.CANCELLED):
        JobFactory(status=status)
    assert reserve_due("default", 10) == [high.pk, low.pk, retry.pk]


def test_a_reservation_keeps_other_clusters_off_until_it_expires():
    job = JobFactory()
    assert reserve_due("default", 5, seconds=60) == [job.pk]
    assert reserve_due("default", 5) == []
    Job.objects.filter(pk=job.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert reserve_due("default", 5) == [job.pk]
    job.refresh_from_db()
    assert job.status == S.QUEUED  # a reservation never pretends the job started


def test_limit_is_respected():
    for _ in range(5):
        JobFactory()
    assert len(reserve_due("default", 2)) == 2
    assert len(reserve_due("default", 10)) == 3


def test_dequeue_hands_out_signed_packages_carrying_only_the_job_id():
    job = JobFactory()
    broker = JobTableBroker(list_key="default")
    [(ack_id, payload)] = broker.dequeue()
    task = SignedPackage.loads(payload)
    assert ack_id == str(job.pk)
    assert task["func"] is execute_handed_over
    assert task["args"] == (str(job.pk),) and task["kwargs"] == {}
    assert task["save"] is False
    assert broker.dequeue() is None  # nothing else due
    assert broker.queue_size() == 0
    if broker._listener is not None:  # the idle dequeue opened it (PostgreSQL): not leaked
        broker._listener.close()


def test_enqueue_through_django_q_is_refused():
    with pytest.raises(NotImplementedError, match="jobs.enqueue"):
        JobTableBroker(list_key="default").enqueue(package(JobFactory().pk))


def test_reserves_across_every_served_queue_and_no_other():
    now = timezone.now()
    email = JobFactory(queue="emails", run_after=now - timedelta(seconds=2))
    report = JobFactory(queue="reports", priority=5, run_after=now)
    JobFactory(queue="default")
    assert reserve_due(["emails", "reports"], 10) == [report.pk, email.pk]
    assert reserve_due(["emails", "reports"], 10) == []  # already reserved
    broker = JobTableBroker(list_key="mixed", queues=["default"])
    assert broker.queue_size() == 1


def test_a_broker_keeps_its_queues_when_pickled_into_a_cluster_process():
    broker = pickle.loads(pickle.dumps(JobTableBroker(list_key="c", queues=["a", "b"])))
    assert (broker.list_key, broker.queues) == ("c", ["a", "b"])


@pytest.mark.parametrize(("waited", "first"), [(200, "low"), (50, "high")])
def test_a_waiting_job_gains_a_priority_point_per_aging_interval(settings, waited, first):
    """Aging 10 s: a priority-0 job due 200 s ago outranks a priority-10 job due now
    (200 s > 10 x 10 s); one due 50 s ago does not yet."""
    settings.JOBS = {**settings.JOBS, "PRIORITY_AGING_SECONDS": 10.0}
    now = timezone.now()
    jobs = {"low": JobFactory(priority=0, run_after=now - timedelta(seconds=waited)),
            "high": JobFactory(priority=10, run_after=now)}
    assert reserve_due("default", 1) == [jobs[first].pk]


def test_the_longest_due_job_is_a_candidate_however_many_outrank_it_by_priority(settings):
    settings.JOBS = {**settings.JOBS, "PRIORITY_AGING_SECONDS": 1.0}
    now = timezone.now()
    for _ in range(20):
        JobFactory(priority=5, run_after=now - timedelta(seconds=1))
    starved = JobFactory(priority=0, run_after=now - timedelta(seconds=60))
    assert reserve_due("default", 2)[0] == starved.pk


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_reservation_reads_only_its_candidates_whatever_the_statistics_say(on_postgres):
    """Statistics taken while the table was empty (a queue table often is) once made
    PostgreSQL read every job of the queue for each reservation: 6 ms instead of 0.2."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_job")  # empty now
    Job.objects.bulk_create(JobFactory.build_batch(3000, queue="default"))
    sql, params = reservation(["default"], 4, None)
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()[0]
        cursor.execute("ROLLBACK")
    nodes = _nodes(plan["Plan"])
    scans = [node for node in nodes
             if node.get("Relation Name") == "jobs_job" and "Scan" in node["Node Type"]]
    assert all(node["Node Type"] != "Seq Scan" for node in scans)
    # The two candidate sets off their partial indexes, the chosen rows by primary
    # key: a few pages, not the hundreds that 3,000 jobs fill (the writes of the
    # UPDATE itself are not counted: they are the same whatever the plan).
    assert {node["Index Name"] for node in nodes if "Index Name" in node} <= {
        "job_due_idx", "job_due_age_idx", "jobs_job_pkey"}, json.dumps(plan, indent=1)
    read = sum(node["Shared Hit Blocks"] + node["Shared Read Blocks"] for node in scans)
    assert read < 50, json.dumps(plan, indent=1)


@pytest.mark.django_db(transaction=True)
def test_each_candidate_set_is_read_in_its_own_index_order():
    """Neither database may sort the whole backlog to find the `limit` best: on
    SQLite, with no statistics, `best` once read every due job off job_due_age_idx
    and sorted it, inside the write transaction every worker waits on."""
    Job.objects.bulk_create(JobFactory.build_batch(500, queue="default"))
    sql, params = reservation(["default"], 4, None)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = [row[3] for row in cursor.fetchall()]
            best = plan[plan.index("CO-ROUTINE best"):plan.index("SCAN best")]
            assert any("job_due_idx" in step for step in best), plan
            assert not any("TEMP B-TREE" in step for step in best), plan
            return
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()[0]
    sorts = [n for n in _nodes(plan["Plan"]) if n["Node Type"] == "Sort"
             and any(m.get("Relation Name") == "jobs_job" for m in _nodes(n))]
    assert sorts == [], json.dumps(plan, indent=1)


def test_q_bulk_sets_the_reservation_size_else_the_database_does(monkeypatch):
    """SQLite's one write lock makes fewer, bigger reservations pay (16 a time)."""
    monkeypatch.setattr(Conf, "BULK", None)  # jobs.conf.q_cluster() leaves it unset
    assert reservation_size() == (16 if connection.vendor == "sqlite" else 2)
    monkeypatch.setattr(Conf, "BULK", 7)  # Q_BULK=7
    assert reservation_size() == 7


def _nodes(node: dict) -> list[dict]:
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


@pytest.mark.django_db(transaction=True)  # each failed poll closes the connection
def test_failing_polls_are_logged_once_per_outage_with_their_count(monkeypatch, caplog):
    from django.db import OperationalError

    from jobs.worker import broker as broker_module

    failures, job = [3], JobFactory()

    def reserve(*args, **kwargs):
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("the database system is shutting down")
        return [(job.pk, "tests.noop")]

    monkeypatch.setattr(broker_module, "reserve", reserve)
    monkeypatch.setattr(broker_module, "sleep", lambda seconds: None)
    broker = JobTableBroker(list_key="default")
    with caplog.at_level("WARNING", logger="jobs.broker"):
        assert [broker.dequeue() for _ in range(3)] == [None, None, None]
        assert broker.dequeue()  # the database answers again
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert warnings[0].exc_info and "until the database answers" in warnings[0].message
    assert "3 polls failed" in warnings[1].message and not warnings[1].exc_info
