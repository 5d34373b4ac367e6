"""LISTEN/NOTIFY wake-up (PostgreSQL): a job that becomes runnable notifies at commit,
never on rollback, and a pusher waiting for work returns at once for its own queues."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from jobs import enqueue
from jobs.models import Attempt, Job, JobStatus
from jobs.worker.broker import JobTableBroker
from jobs.worker.runner import run_job
from jobs.worker.wakeup import Heard, Listener

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def heard(conn, timeout=0.3):
    return [n.payload for n in conn.notifies(timeout=timeout)]


def test_a_job_enqueued_in_a_transaction_notifies_at_commit_only(listening):
    with transaction.atomic():
        job = enqueue("tests.noop", queue="reports")
        assert heard(listening) == []  # not before the commit
    (payload,) = heard(listening)
    note = Heard.parse(payload)
    assert note is not None and note.queue == "reports"
    assert abs(note.due - job.run_after.timestamp()) < 0.001
    assert (note.job_id, note.task_name) == (str(job.pk), "tests.noop")


def test_the_notification_carries_the_database_clock(listening):
    job = enqueue("tests.noop", queue="reports", run_after=timedelta(seconds=30))
    (payload,) = heard(listening)
    note = Heard.parse(payload)
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM statement_timestamp())")
        database_now = float(cursor.fetchone()[0])
    assert note is not None and note.sent_at is not None
    assert 0 <= database_now - note.sent_at < 2
    assert abs(note.due - job.run_after.timestamp()) < 0.001


@pytest.mark.parametrize("host_offset", [-60.0, 0.0, 60.0])
def test_when_a_heard_job_is_due_is_read_from_the_database_clock(host_offset):
    """A host whose clock is a minute off hears a job due now as due now, and one due
    in 2 s as due 2 s from now by its own clock (not a minute early or late)."""
    host_now = time.time()
    database_now = host_now - host_offset
    listener = Listener(["default"])
    due_now = json.dumps({"q": "default", "at": database_now, "n": database_now,
                          "id": "a", "t": "tests.noop"})
    assert listener._due([due_now]) == [("a", "tests.noop")]
    later = json.dumps({"q": "default", "at": database_now + 2, "n": database_now,
                        "id": "b", "t": "tests.noop"})
    assert listener._due([later]) is None
    assert listener.next_due is not None
    assert 1.5 < listener.next_due - host_now < 2.5


def test_a_payload_of_the_previous_trigger_still_wakes_for_its_queue():
    assert Heard.parse("reports 1800000000.5") == Heard("reports", 1800000000.5)
    assert Heard.parse("garbage") is None


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


def _enqueue_later(delay, count=1, queue="default"):
    def run():
        time.sleep(delay)
        with transaction.atomic():
            jobs = [enqueue("tests.noop", queue=queue) for _ in range(count)]
        made.extend(str(j.pk) for j in jobs)
        connection.close()

    made: list[str] = []
    thread = threading.Thread(target=run)
    thread.start()
    return thread, made


def test_a_job_heard_of_while_waiting_is_handed_over_by_id(settings, on_postgres):
    settings.JOBS = {**settings.JOBS, "LISTEN_FALLBACK_SECONDS": 3.0}
    listener = Listener(["default"])
    assert listener.wait(0.01) == []  # connects, then looks at the queues at once
    thread, made = _enqueue_later(0.2)
    started = time.monotonic()
    got = listener.wait(0.01, limit=4)
    thread.join()
    assert got == [(made[0], "tests.noop")] and time.monotonic() - started < 1.5
    listener.close()


def test_a_burst_bigger_than_the_limit_is_reserved_best_first_instead(settings, on_postgres):
    settings.JOBS = {**settings.JOBS, "LISTEN_FALLBACK_SECONDS": 3.0}
    listener = Listener(["default"])
    listener.wait(0.01)
    thread, _ = _enqueue_later(0.2, count=5)
    started = time.monotonic()
    assert listener.wait(0.01, limit=4) == []  # woken, to reserve
    assert time.monotonic() - started < 1.5
    thread.join()
    listener.close()


def test_notifications_that_piled_up_while_busy_cost_one_reservation(settings, on_postgres):
    """Before: each of them woke the pusher for an empty reservation of its own."""
    settings.JOBS = {**settings.JOBS, "LISTEN_FALLBACK_SECONDS": 0.6}
    listener = Listener(["default"])
    listener.wait(0.01)
    with transaction.atomic():
        for _ in range(2000):  # a batch the busy pusher drained by reserving
            enqueue("tests.noop")
    time.sleep(0.3)
    started = time.monotonic()
    assert listener.wait(0.01, limit=4) == []  # once: look at the queues
    assert time.monotonic() - started < 0.3
    started = time.monotonic()
    assert listener.wait(0.01, limit=4) == []  # then a real wait: the pile is gone
    assert time.monotonic() - started >= 0.5
    listener.close()


def test_an_idle_broker_hands_a_heard_job_over_without_reserving_it(settings, on_postgres):
    settings.JOBS = {**settings.JOBS, "LISTEN_FALLBACK_SECONDS": 3.0}
    broker = JobTableBroker(queues=["default"])
    broker.run_maintenance = False
    assert broker.dequeue() is None  # nothing due: connects its listener
    thread, made = _enqueue_later(0.2)
    (task,) = broker.dequeue()  # waits, hears of the job, hands it over
    thread.join()
    assert task[0] == made[0]
    assert Job.objects.get(pk=made[0]).reserved_until is None, "no reservation round trip"
    # Still queued until a worker claims it: the next round may hand it over again,
    # and the claim gives it to one worker only.
    (again,) = broker.dequeue()
    assert again[0] == made[0]
    assert [run_job(made[0]), run_job(made[0])] == [JobStatus.SUCCEEDED, None]
    assert Attempt.objects.filter(job_id=made[0]).count() == 1
    broker._listener.close()
