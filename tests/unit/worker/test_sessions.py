"""A worker's sessions: named after the worker, bounded on the wire, and the lapsed
transaction (only that one) ended by the reaper."""

import logging
import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection, connections, transaction

from jobs import enqueue, once
from jobs.core import transitions
from jobs.core.registry import longest_timeout
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, OperationKey
from jobs.worker import reaper, sessions
from jobs.worker.sessions import HEARTBEAT, WORKER, session_name

pytestmark = pytest.mark.django_db(transaction=True)
W = uuid.UUID("0123456789abcdef0123456789abcdef")


def test_a_session_name_keeps_the_projects_name_in_front_and_the_whole_id_at_the_end():
    assert session_name(WORKER, W) == f"jobs-worker:{W.hex}"
    assert session_name(WORKER, W, "shop") == f"shop jobs-worker:{W.hex}"
    long = session_name(HEARTBEAT, W, "x" * 100)
    assert len(long.encode()) == sessions.MAX_NAME_BYTES and long.endswith(
        f" jobs-heartbeat:{W.hex}")
    # What PostgreSQL would mangle (it keeps printable ASCII) is left out, not escaped.
    assert session_name(WORKER, W, "bo\u00eete\n") == f"bote jobs-worker:{W.hex}"
    # Named again (a second spawn in one process): one suffix, the new one.
    other = uuid.uuid4()
    assert session_name(WORKER, other, session_name(WORKER, W, "shop")) == (
        f"shop jobs-worker:{other.hex}")


def test_the_client_limits_follow_the_lease():
    assert sessions.client_limits(30) == {
        "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
        "keepalives_count": 3, "tcp_user_timeout": 30_000, "connect_timeout": 10}
    short = sessions.client_limits(3)
    assert short["keepalives_idle"] == 1 and short["tcp_user_timeout"] == 3000
    assert short["connect_timeout"] == 2  # libpq's least


@pytest.mark.postgres_only
def test_a_worker_names_its_sessions_and_the_projects_own_limits_win(on_postgres, monkeypatch):
    assert on_postgres
    wrapper = connections["default"]
    monkeypatch.setitem(wrapper.settings_dict, "OPTIONS",
                        {"application_name": "shop", "connect_timeout": 7})
    monkeypatch.setattr(sessions._state, "configured", False)
    sessions.configure_worker(W, 30)
    options = wrapper.settings_dict["OPTIONS"]
    assert options["application_name"] == f"shop jobs-worker:{W.hex}"
    assert options["connect_timeout"] == 7
    assert options["keepalives_idle"] == 10 and options["tcp_user_timeout"] == 30_000
    assert sessions._state.configured


def _new_session_shows(*names: str) -> dict[str, str]:
    fresh = connections.create_connection("default")
    try:
        with fresh.cursor() as cursor:
            values = {}
            for name in names:
                cursor.execute(f"SHOW {name}")
                values[name] = cursor.fetchone()[0]
    finally:
        fresh.close()
    return values


@pytest.mark.postgres_only
def test_a_configured_workers_new_session_gets_the_server_side_limits(on_postgres, monkeypatch):
    assert on_postgres
    monkeypatch.setattr(sessions._state, "configured", True)
    values = _new_session_shows("tcp_keepalives_idle", "tcp_user_timeout",
                                "idle_in_transaction_session_timeout")
    assert values["tcp_keepalives_idle"] == "10"
    assert values["tcp_user_timeout"] == "30000"  # ms
    # The longest task timeout plus the 10 s grace: longer than any live task's.
    assert values["idle_in_transaction_session_timeout"] == f"{longest_timeout() + 10}s"


@pytest.mark.postgres_only
def test_a_server_side_limit_someone_else_set_is_kept(on_postgres, monkeypatch):
    assert on_postgres
    monkeypatch.setattr(sessions._state, "configured", True)
    monkeypatch.setitem(connections["default"].settings_dict, "OPTIONS",
                        {"options": "-c idle_in_transaction_session_timeout=123s"})
    values = _new_session_shows("idle_in_transaction_session_timeout", "tcp_keepalives_idle")
    assert values == {"idle_in_transaction_session_timeout": "123s",
                      "tcp_keepalives_idle": "10"}


def _raw(name: str, **kwargs) -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**{**params, "application_name": name, **kwargs})


def _db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


def _alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 1


@pytest.mark.postgres_only
def test_only_the_transaction_begun_before_the_lapse_is_ended(on_postgres):
    assert on_postgres
    other = uuid.uuid4()
    lapsed = _raw(session_name(WORKER, W, "shop"))  # the cut-off task's transaction
    beat = _raw(session_name(HEARTBEAT, W), autocommit=True)
    stranger = _raw(session_name(WORKER, other))  # another worker's, as old
    later = _raw(session_name(WORKER, W))
    try:
        lapsed.execute("SELECT 1")
        stranger.execute("SELECT 1")
        # The heartbeat's autocommit statement, running since before the lapse.
        sleeping = threading.Thread(target=lambda: beat.execute("SELECT pg_sleep(2)"))
        sleeping.start()
        time.sleep(0.2)
        lease_end = _db_now()
        later.execute("SELECT 1")  # the same worker, a transaction begun after the lapse
        assert sessions.end_lapsed_transactions(W, lease_end) == 1
        assert wait_gone(lapsed.info.backend_pid)
        for survivor in (beat, stranger, later):
            assert _alive(survivor.info.backend_pid)
        later.execute("SELECT 1")
        sleeping.join()
        with pytest.raises(psycopg.OperationalError):
            lapsed.execute("SELECT 1")
    finally:
        for c in (lapsed, beat, stranger, later):
            c.close()


def wait_gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres_only
def test_reaping_a_lapsed_attempt_frees_its_once_key_for_the_rerun(on_postgres, settings):
    assert on_postgres
    settings.JOBS = {**settings.JOBS, "ONCE_LOCK_TIMEOUT_SECONDS": 5}
    job = enqueue("tests.send_welcome_email", 9)
    transitions.claim(job.pk, worker_host="cut", worker_pid=1, lease_seconds=30, worker_id=W)
    holder = _raw(session_name(WORKER, W))
    try:  # the cut-off worker holds the key in its open transaction
        holder.execute(f"INSERT INTO {OperationKey._meta.db_table} (key, created_at) "
                       "VALUES ('welcome-email:9', now())")
        time.sleep(0.05)
        Job.objects.filter(pk=job.pk).update(lease_expires_at=_db_now())
        time.sleep(0.05)
        assert reaper.sweep().retried == [job.pk]
        assert Attempt.objects.get(job=job).status == AttemptStatus.LOST
        started = time.monotonic()
        with transaction.atomic():
            assert once("welcome-email:9") is True  # no wait for the cut-off worker
        assert time.monotonic() - started < 1.0
        assert wait_gone(holder.info.backend_pid)
    finally:
        holder.close()
    assert Job.objects.get(pk=job.pk).status == JobStatus.RETRYING


@pytest.fixture
def role(on_postgres):
    """A role of its own (the server is shared: a unique name, dropped after)."""
    assert on_postgres
    name = f"jobs_reaper_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {name}")
    yield name
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"DROP ROLE {name}")


def _as(role: str, worker: uuid.UUID, lease_end) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
    try:
        return sessions.end_lapsed_transactions(worker, lease_end)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


@pytest.mark.postgres_only
@pytest.mark.parametrize("grant, says", [
    ("", "cannot see the sessions"),
    ("pg_read_all_stats", "may not end a lapsed worker's transaction"),
])
def test_a_reaper_without_the_rights_says_once_what_to_grant_and_goes_on(
        role, grant, says, monkeypatch, caplog):
    monkeypatch.setattr(sessions._state, "told", set())
    if grant:
        with connection.cursor() as cursor:
            cursor.execute(f"GRANT {grant} TO {role}")
    lapsed = _raw(session_name(WORKER, W))  # a superuser's session: out of the role's reach
    try:
        lapsed.execute("SELECT 1")
        lease_end = _db_now()
        with caplog.at_level(logging.WARNING, logger="jobs.sessions"):
            assert _as(role, W, lease_end) == 0
            assert _as(role, W, lease_end) == 0
        told = [r.getMessage() for r in caplog.records if r.name == "jobs.sessions"]
        assert len(told) == 1 and says in told[0] and "GRANT" in told[0]
        assert _alive(lapsed.info.backend_pid)
    finally:
        lapsed.close()
        if grant:
            with connection.cursor() as cursor:
                cursor.execute(f"REVOKE {grant} FROM {role}")


@pytest.mark.postgres_only
def test_the_watchdog_cuts_a_statement_that_outlives_its_deadline(on_postgres):
    assert on_postgres
    dog = sessions.Watchdog()
    dog.start()
    conn = _raw("watched", autocommit=True)
    pid = conn.info.backend_pid
    try:
        with dog.deadline(2.0, conn.pgconn.socket) as quick:
            conn.execute("SELECT 1")
        assert not quick.cut
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError), dog.deadline(0.3, conn.pgconn.socket) as slow:
            conn.execute("SELECT pg_sleep(10)")
        assert slow.cut and time.monotonic() - started < 2.0
    finally:
        dog.stop()
        conn.close()
        with connection.cursor() as cursor:  # the server side sleeps on, unaware
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
