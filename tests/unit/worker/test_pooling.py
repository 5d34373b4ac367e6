"""Behind a connection pooler (PgBouncer in transaction mode): the worker's statements go
unprepared, the pusher polls instead of listening, and a claim that fails for any
reason gives its job back at once. The real pooler: tests/integration/test_pgbouncer.py."""

import logging

import pytest
from django.db import ProgrammingError, connection

from jobs import enqueue
from jobs.core import statements, transitions
from jobs.models import Job, JobStatus
from jobs.worker import broker as broker_module
from jobs.worker.broker import execute_handed_over
from jobs.worker.reservation import reserve_due
from jobs.worker.runner import run_job
from jobs.worker.wakeup import Listener
from tests.cluster import database_url

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]
S = JobStatus


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def fresh_connection(on_postgres):
    """A new connection: psycopg numbers its prepared statements from _pg3_0 again."""
    assert on_postgres
    connection.close()
    connection.ensure_connection()
    yield connection.connection
    connection.close()


def test_a_direct_connection_is_told_apart_from_a_pooled_one_and_prepares(fresh_connection):
    assert not statements.pooled(fresh_connection)
    assert statements.prepares(fresh_connection)
    assert run_job(enqueue("tests.add", 1, b=2).pk) == S.SUCCEEDED
    assert any("claimed AS" in s for s in prepared())


def test_a_pooled_connection_sends_the_same_statements_unprepared(fresh_connection,
                                                                  monkeypatch, caplog):
    monkeypatch.setattr(statements, "pooled", lambda raw: True)
    monkeypatch.setattr(statements, "_told", set())
    with caplog.at_level(logging.INFO, logger="jobs.statements"):
        for n in range(3):
            assert run_job(enqueue("tests.add", n, b=1).pk) == S.SUCCEEDED
        assert len(reserve_due("default", 4)) == 0
    assert prepared() == []
    assert [r.message for r in caplog.records].count(
        "the database connection goes through a connection pooler (PgBouncer?): the "
        "worker's statements are sent unprepared") == 1


def test_a_refused_prepared_statement_turns_preparing_off_for_its_connection(
        fresh_connection, monkeypatch):
    """What a pooler does that slipped past the check: another client's `_pg3_0` is
    already on the server connection it lends."""
    monkeypatch.setattr(statements, "_told", set())
    with connection.cursor() as cursor:
        cursor.execute("PREPARE _pg3_0 AS SELECT 1")
    job = enqueue("tests.add", 2, b=3)
    with pytest.raises(ProgrammingError, match='prepared statement "_pg3_0" already exists'):
        run_job(job.pk)
    assert Job.objects.get(pk=job.pk).status == S.QUEUED  # the claim did not happen
    assert not statements.prepares(fresh_connection)
    assert run_job(job.pk) == S.SUCCEEDED  # same connection, unprepared
    assert prepared() == []


def test_a_claim_that_fails_gives_its_job_back_at_once(fresh_connection):
    job = enqueue("tests.add", 2, b=3)
    assert reserve_due("default", 4) == [job.pk]  # prepared as _pg3_0
    with connection.cursor() as cursor:
        cursor.execute("PREPARE _pg3_1 AS SELECT 1")  # the claim, next, will be refused
    execute_handed_over(str(job.pk))  # logs, never raises
    job.refresh_from_db()
    assert (job.status, job.reserved_until) == (S.QUEUED, None)
    # Claimable by any cluster now, not after JOBS_RESERVATION_SECONDS.
    assert reserve_due("default", 4) == [job.pk]
    execute_handed_over(str(job.pk))
    assert Job.objects.get(pk=job.pk).status == S.SUCCEEDED


def test_a_failure_after_the_claim_leaves_the_job_running_for_the_reaper(fresh_connection,
                                                                          monkeypatch):
    job = enqueue("tests.add", 2, b=3)
    reserve_due("default", 4)

    def claimed_then_lost(job_id):
        transitions.claim(job_id, worker_host="h", worker_pid=1, lease_seconds=30)
        raise ProgrammingError("the outcome could not be written")

    monkeypatch.setattr(broker_module, "run_job", claimed_then_lost)
    execute_handed_over(str(job.pk))
    assert Job.objects.get(pk=job.pk).status == S.RUNNING  # untouched: the lease decides


def test_a_pooled_listen_connection_polls_and_says_so_once(on_postgres, monkeypatch,
                                                           caplog):
    assert on_postgres
    monkeypatch.setattr(statements, "pooled", lambda raw: True)
    listener = Listener(["default"])
    slept = []
    monkeypatch.setattr("jobs.worker.wakeup.time.sleep", slept.append)
    with caplog.at_level(logging.WARNING, logger="jobs.wakeup"):
        for _ in range(3):
            assert listener.wait(0.05) == []
    assert listener.pooled and listener._conn is None
    assert slept == [0.05, 0.05]  # the first wait looks at once, then every poll
    warnings = [r.message for r in caplog.records]
    assert len(warnings) == 1 and "LISTEN_DATABASE_URL" in warnings[0]


def test_the_listen_connection_can_be_a_url_of_its_own(settings, on_postgres, monkeypatch):
    assert on_postgres
    connected = []
    real = broker_module.Listener._connect

    def spy(self):
        conn = real(self)
        connected.append(conn.info.dbname)
        return conn

    monkeypatch.setattr(Listener, "_connect", spy)
    settings.JOBS = {**getattr(settings, "JOBS", {}), "LISTEN_FALLBACK_SECONDS": 2.0,
                     "LISTEN_DATABASE_URL": database_url()}
    listener = Listener(["default"])
    try:
        assert listener.wait(0.01) == []  # connects, then looks at once
        job = enqueue("tests.add", 1, b=1)
        assert str(job.pk) in listener._read(2.0, stop_after=1)[0]
    finally:
        listener.close()
    assert connected == [connection.settings_dict["NAME"]]
