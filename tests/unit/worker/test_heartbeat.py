"""A renewal that does not come back is cut after a third of the lease and tried again;
a worker that cannot renew for a whole lease gives the job up at its next safe point,
and says so."""

import logging
import threading
import time

import psycopg
import pytest
from django.db import connection, transaction

from jobs import enqueue, once
from jobs.core import transitions
from jobs.core.context import AttemptLost, JobContext, running
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, OperationKey
from jobs.worker import heartbeat
from jobs.worker.runner import run_job
from jobs.worker.steps import Steps

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 1.5


def _locked(job_id) -> psycopg.Connection:
    """Another transaction holding the job's row: a renewal sent now gets no answer."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    locker = psycopg.connect(**params)
    locker.execute(f"SELECT 1 FROM {Job._meta.db_table} WHERE id = %s FOR UPDATE", [job_id])
    return locker


def _release(locker: psycopg.Connection) -> None:
    """Let the cut renewals still waiting on the server finish, and see them gone."""
    locker.rollback()
    locker.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.mark.postgres_only
def test_an_unanswered_renewal_is_cut_and_a_lapsed_lease_stops_the_job(on_postgres, caplog):
    assert on_postgres
    job = enqueue("tests.noop")
    claimed = transitions.claim(job.pk, worker_host="box", worker_pid=1, lease_seconds=LEASE)
    beat_thread = heartbeat.Heartbeat()
    beat_thread.start()
    assert beat_thread.connected.wait(5)
    cancel, lost = threading.Event(), threading.Event()
    beat = heartbeat.Beat(claimed, LEASE, cancel, lost)
    beat.next_at += beat.interval
    locker = _locked(job.pk)
    try:
        with caplog.at_level(logging.WARNING, logger="jobs.heartbeat"):
            beat_thread.watch(beat)
            assert lost.wait(LEASE + 2 * beat.interval + 1)
            took = time.monotonic() - beat.renewed_at  # since the claim: no renewal got in
    finally:
        beat_thread.stop()
        _release(locker)
    # Not before the lease ran out, and not long after: no renewal waited past its third.
    assert LEASE <= took <= LEASE + 2 * beat.interval + 0.5, took
    said = [r.getMessage() for r in caplog.records if r.name == "jobs.heartbeat"]
    assert any(f"no answer within {beat.interval:.1f} s, connection cut" in m for m in said)
    [lapsed] = [m for m in said if "no lease renewal for" in m]
    assert lapsed.startswith(f"job {job.pk} attempt 1: no lease renewal for ")
    assert "stops at its next safe point" in lapsed
    assert not cancel.is_set()


@pytest.mark.postgres_only
def test_a_cooperative_task_stops_once_its_lease_lapsed_unrenewed(on_postgres, settings,
                                                                    caplog):
    assert on_postgres
    settings.JOBS = {**settings.JOBS, "LEASE_SECONDS": LEASE}
    job = enqueue("tests.cooperative", 20.0, "late-effect")
    outcome: list = []

    def work() -> None:
        try:
            outcome.append(run_job(job.pk))
        finally:
            connection.close()  # the thread's own

    worker = threading.Thread(target=work)
    with caplog.at_level(logging.WARNING):
        worker.start()
        deadline = time.monotonic() + 10
        while Job.objects.get(pk=job.pk).status != JobStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        locker = _locked(job.pk)
        try:
            worker.join(LEASE + 5)
            assert not worker.is_alive()
        finally:
            _release(locker)
    assert outcome == [None]  # gave up; nothing recorded by this worker
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"job {job.pk} attempt 1: no lease renewal for" in said
    assert f"job {job.pk} was taken from attempt 1" in said
    # Nobody reaped it (no reaper here): its lease lapses and the reaper settles it.
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert Attempt.objects.get(job=job).status == AttemptStatus.RUNNING


def _lost_context() -> JobContext:
    ctx = JobContext(job_id=enqueue("tests.noop").pk, task_name="tests.noop", attempt_number=1,
                     attempt_count=1, max_attempts=3, steps=Steps())
    ctx.lost_event.set()
    return ctx


def test_once_is_a_safe_point_for_an_attempt_that_lost_its_job():
    with running(_lost_context()), pytest.raises(AttemptLost, match="lost the job"):
        with transaction.atomic():
            once("lost:1")
    assert not OperationKey.objects.filter(key="lost:1").exists()


def test_progress_is_a_safe_point_for_an_attempt_that_lost_its_job():
    ctx = _lost_context()
    ctx.steps.current = object()  # inside a step
    with pytest.raises(AttemptLost, match="lost the job"):
        ctx.progress(1, 10)

