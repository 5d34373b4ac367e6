"""Exhausted connection slots must not get a live worker reaped.

The cluster connects as a role with a CONNECTION LIMIT (nothing on the server
changes); the test takes the role's remaining slots, then long jobs start. Each
worker proves it is alive over the heartbeat connection it opened at spawn, so
no job is reaped while its worker runs it, and every job ends.
"""

import threading

import psycopg
import pytest
from django.db import connection

from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus
from tests.cluster import database_url, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
S = JobStatus
ROLE = "jobs_limited"
LEASE = 2.0


def sql(statement: str, params: tuple = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def as_role() -> str:
    """The test database's URL, for the limited role."""
    return database_url().replace("postgres://postgres@", f"postgres://{ROLE}@", 1)


@pytest.fixture
def limited_role(on_postgres):
    assert on_postgres
    sql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
        f"THEN CREATE ROLE {ROLE} LOGIN; END IF; END $$")
    sql(f"ALTER ROLE {ROLE} CONNECTION LIMIT -1")
    for grant in (f"GRANT ALL ON SCHEMA public TO {ROLE}",
                  f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}",
                  f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {ROLE}"):
        sql(grant)
    yield ROLE
    sql(f"ALTER ROLE {ROLE} CONNECTION LIMIT -1")


def role_connections() -> int:
    return sql("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (ROLE,))[0][0]


class SlotHog(threading.Thread):
    """Takes every slot of the role that is or becomes free, as a busy application
    would: a worker that lets go of a connection does not get it back."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.held: list[psycopg.Connection] = []
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        url = as_role().replace("postgres://", "postgresql://", 1)
        while not self.stop.is_set():
            try:
                self.held.append(psycopg.connect(url, connect_timeout=2))
            except psycopg.OperationalError as exc:
                assert "too many connections for role" in str(exc), exc
                self.refused += 1
                self.stop.wait(0.005)

    def release(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        for conn in self.held:
            conn.close()


def test_no_live_worker_is_reaped_while_connection_slots_are_exhausted(
    cluster_factory, limited_role
):
    cluster = cluster_factory(workers=2, env={
        "DATABASE_URL": as_role(), "JOBS_LEASE_SECONDS": str(LEASE),
        "JOBS_REAPER_INTERVAL_SECONDS": "0.5",
    })
    warm = [enqueue("tests.noop") for _ in range(4)]
    assert wait_for(lambda: Job.objects.filter(pk__in=[j.pk for j in warm],
                                               status=S.SUCCEEDED).count() == 4, 30), (
        cluster.log()[-3000:])
    # Cap the role at what the cluster holds plus two; the hog takes those and any more.
    sql(f"ALTER ROLE {ROLE} CONNECTION LIMIT {role_connections() + 2}")
    hog = SlotHog()
    hog.start()
    try:
        assert wait_for(lambda: hog.refused > 0, 5), "the connection limit was not enforced"
        long = [enqueue("tests.sleep", 4 * LEASE) for _ in range(2)]
        ids = [j.pk for j in long]
        assert wait_for(lambda: Job.objects.filter(pk__in=ids, status=S.RUNNING).count() == 2,
                        15), cluster.log()[-3000:]
        started = {j.pk: j.started_at for j in Job.objects.filter(pk__in=ids)}
        # Positive proof that both workers renewed their leases during the exhaustion:
        # a heartbeat written more than two leases after the job started.
        assert wait_for(lambda: all(
            j.heartbeat_at and (j.heartbeat_at - started[j.pk]).total_seconds() > 2 * LEASE
            for j in Job.objects.filter(pk__in=ids)), 3 * LEASE), cluster.log()[-3000:]
        assert wait_for(lambda: Job.objects.filter(pk__in=ids, status=S.SUCCEEDED).count() == 2,
                        6 * LEASE), cluster.log()[-3000:]
    finally:
        hog.release()
    assert not Attempt.objects.filter(status=AttemptStatus.LOST).exists()
    assert all(Job.objects.get(pk=pk).attempts.count() == 1 for pk in ids)
    after = enqueue("tests.noop")
    assert wait_for(lambda: Job.objects.get(pk=after.pk).status == S.SUCCEEDED, 15)
