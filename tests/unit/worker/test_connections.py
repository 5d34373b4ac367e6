"""The worker's connection: no health-check round trip while it is proven alive, and a
statement that finds it dead after all is sent once more on a new connection."""

import sqlite3
from time import monotonic

import psycopg
import pytest
from django.db import close_old_connections, connection

from jobs import enqueue
from jobs.models import Job, JobStatus
from jobs.worker import connections
from jobs.worker.runner import run_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def probes(monkeypatch):
    """How many health checks (Django's is_usable round trip) ran."""
    count = [0]
    real = connection.is_usable

    def counting() -> bool:
        count[0] += 1
        return real()

    monkeypatch.setattr(connection, "is_usable", counting)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    return count


def query() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_a_connection_that_answered_moments_ago_is_not_probed(probes):
    query()
    connections.answered()
    close_old_connections()
    assert connections.skip_health_check_if_fresh()
    query()
    assert probes[0] == 0


def test_a_connection_idle_for_longer_is_probed_as_django_would(probes, monkeypatch):
    query()
    monkeypatch.setattr(connections._liveness, "answered_at",
                        monotonic() - connections.FRESH_SECONDS - 0.1)
    close_old_connections()
    assert not connections.skip_health_check_if_fresh()
    query()
    assert probes[0] == 1


@pytest.mark.postgres_only
def test_a_trusted_connection_found_dead_is_replaced_and_the_job_still_runs(on_postgres):
    assert on_postgres
    first, job = enqueue("tests.add", 1, b=2), enqueue("tests.add", 2, b=3)
    assert run_job(first.pk) == JobStatus.SUCCEEDED  # the connection has just answered
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:  # a restart, for this backend
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    close_old_connections()  # what django-q2 calls before each task: it cannot tell
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert job.result == 5 and job.attempt_count == 1 and job.attempts.count() == 1
    assert connection.connection.info.backend_pid != pid


# --- An atomic task's transaction begins with its first statement ---------------------


def test_the_begin_is_held_back_until_the_task_sends_a_statement():
    sent = []

    def execute(sql, params, many, context):
        sent.append(sql)
        return "result"

    tx = connections.TaskTransaction()
    assert tx(execute, "BEGIN IMMEDIATE", None, False, {}) is None
    assert sent == [] and not tx.sent  # no lock taken for a task that works first
    assert tx(execute, "UPDATE t SET x = 1", None, False, {}) == "result"
    assert sent == ["BEGIN IMMEDIATE", "UPDATE t SET x = 1"]
    tx(execute, "SAVEPOINT s1", None, False, {})
    assert sent[-1] == "SAVEPOINT s1" and sent.count("BEGIN IMMEDIATE") == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_that_never_touches_the_database_holds_no_lock():
    """On SQLite the write lock is free while the task works; elsewhere psycopg's own
    lazy BEGIN gives the same: an idle connection, nothing to commit."""
    with connections.task_transaction() as tx:
        assert tx.idle
        if connection.vendor == "sqlite":
            other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
            other.execute("BEGIN IMMEDIATE")  # would raise "database is locked"
            other.rollback()
            other.close()
        Job.objects.exists()
        assert not tx.idle
        if connection.vendor == "sqlite":  # from its first statement, the lock is its own
            other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
