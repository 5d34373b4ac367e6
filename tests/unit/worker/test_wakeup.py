"""LISTEN/NOTIFY wake-up (PostgreSQL): a job that becomes runnable notifies at commit,
never on rollback, and a pusher waiting for work returns at once for its own queues."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from jobs import enqueue
from jobs.worker.wakeup import Listener

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def heard(conn, timeout=0.3):
    return [n.payload for n in conn.notifies(timeout=timeout)]


def test_a_job_enqueued_in_a_transaction_notifies_at_commit_only(listening):
    with transaction.atomic():
        job = enqueue("tests.noop", queue="reports")
        assert heard(listening) == []  # not before the commit
    (payload,) = heard(listening)
    queue, epoch = payload.rsplit(" ", 1)
    assert queue == "reports" and abs(float(epoch) - job.run_after.timestamp()) < 0.001


def test_a_rolled_back_enqueue_notifies_nobody(listening):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("tests.noop")
        raise RuntimeError("the view failed")
    assert heard(listening, timeout=0.5) == []


def test_the_listener_wakes_for_its_queues_and_waits_out_the_others(settings, on_postgres):
    settings.JOBS = {**settings.JOBS, "LISTEN_FALLBACK_SECONDS": 2.0}
    listener = Listener(["default"])
    listener.wait(0.01)  # connects and LISTENs, then returns at once

    def enqueue_later(queue):
        time.sleep(0.3)
        enqueue("tests.noop", queue=queue)
        connection.close()

    for queue, expected in (("default", (0.25, 1.0)), ("elsewhere", (1.9, 3.0))):
        worker = threading.Thread(target=enqueue_later, args=(queue,))
        started = time.monotonic()
        worker.start()
        listener.wait(0.01)
        waited = time.monotonic() - started
        worker.join()
        assert expected[0] <= waited <= expected[1], (queue, waited)
    listener.close()


def test_a_delayed_job_shortens_the_wait_to_its_run_after(settings, on_postgres):
    settings.JOBS = {**settings.JOBS, "LISTEN_FALLBACK_SECONDS": 5.0}
    listener = Listener(["default"])
    listener.wait(0.01)
    enqueue("tests.noop", run_after=timedelta(seconds=1))
    started = time.monotonic()
    listener.wait(0.01)  # hears of it, then waits until its run_after, not 5 s
    assert 0.8 <= time.monotonic() - started <= 1.5
    listener.close()
