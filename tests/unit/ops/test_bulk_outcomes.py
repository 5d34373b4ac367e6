"""An every-match operation ends as its job ends, stops when cancelled, and reports
counts that add up with true reasons (issue 21)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.core import transitions
from jobs.core.context import JobCancelled
from jobs.models import Job, JobStatus, OperationStatus, OperatorAction
from jobs.models.console import OperationTarget
from jobs.ops import bulk, lookups, operations
from jobs.worker import reaper
from jobs.worker.runner import run_job
from jobs.worker.timeouts import JobTimeout
from tests.factories import JobFactory
from tests.ui.dashboard.factories import staff_with

pytestmark = pytest.mark.django_db
S = JobStatus
OS = OperationStatus
NOT_DEAD = "that are not dead or cancelled"
STOP_POLLING = 286


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(bulk, "BATCH", 3)


def operation(n_dead=3, **filters):
    for _ in range(n_dead):
        JobFactory(status=S.DEAD)
    return bulk.start("requeue", staff_with("requeue_job"), {"status": S.DEAD, **filters})


def last_attempt(row):
    """Make the operation's next run its last, as after four failed tries."""
    Job.objects.filter(pk=row.job_id).update(max_attempts=1)


def in_db(row):
    return OperatorAction.objects.get(pk=row.pk)


def reap(row, *, cancel=False):
    """A worker in another process claimed the job and died; the reaper settles it."""
    job = Job.objects.get(pk=row.job_id)
    transitions.claim(job.pk, worker_host="box", worker_pid=7, lease_seconds=30)
    if cancel:
        transitions.cancel([job.pk])
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    reaper.sweep()


# --- 1. every end of its job ends the operation, persistently -------------------------


def test_a_job_that_succeeds_leaves_the_operation_done():
    row = operation(3)
    assert run_job(row.job_id) == S.SUCCEEDED
    row = in_db(row)
    assert (row.status, row.done, row.matched) == (OS.DONE, 3, 3)
    assert not OperationTarget.objects.filter(operation=row).exists()


def test_an_error_on_the_last_attempt_leaves_it_failed_with_the_error(
        monkeypatch, django_capture_on_commit_callbacks):
    row = operation(2)
    last_attempt(row)

    def broken(operation_id):
        raise RuntimeError("database gone")

    monkeypatch.setattr(bulk, "run", broken)
    # job_finished is sent once the outcome commits: here, the test's transaction
    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(row.job_id) == S.DEAD
    row = in_db(row)  # written by the job_finished receiver, not by a read
    assert row.status == OS.FAILED and row.finished_at
    assert "RuntimeError" in row.error and "database gone" in row.error


def test_an_error_with_attempts_left_keeps_it_running_for_the_retry(monkeypatch):
    row = operation(2)
    monkeypatch.setattr(bulk, "run", lambda operation_id: 1 / 0)
    assert run_job(row.job_id) == S.RETRYING
    assert bulk.report(in_db(row)).startswith("Working: 0 of 2 handled so far.")
    assert in_db(row).status == OS.RUNNING


def test_a_timeout_on_the_last_attempt_leaves_it_failed_saying_so(
        monkeypatch, django_capture_on_commit_callbacks):
    row = operation(2)
    last_attempt(row)

    def slow(operation_id):
        raise JobTimeout("deadline")

    monkeypatch.setattr(bulk, "run", slow)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(row.job_id) == S.DEAD
    row = in_db(row)
    assert row.status == OS.FAILED and row.error.startswith(bulk.TIMED_OUT)


def test_a_reaped_job_leaves_it_failed_saying_the_worker_was_lost():
    row = operation(2)
    last_attempt(row)
    reap(row)  # job_finished waits for the test's transaction to commit: settled when read
    assert Job.objects.get(pk=row.job_id).status == S.DEAD
    text = bulk.report(in_db(row))
    assert text.startswith("Stopped by an error after 0 of 2: requeued 0, skipped 0.")
    assert bulk.WORKER_LOST in text and "WorkerLost" in text
    row = in_db(row)
    assert row.status == OS.FAILED and row.error.startswith(bulk.WORKER_LOST) and row.finished_at


def test_a_job_reaped_with_a_cancel_pending_leaves_it_cancelled():
    row = operation(2)
    reap(row, cancel=True)
    assert Job.objects.get(pk=row.job_id).status == S.CANCELLED
    assert bulk.report(in_db(row)) == "Cancelled after 0 of 2: requeued 0, skipped 0."
    assert in_db(row).status == OS.CANCELLED


def test_a_job_cancelled_before_it_ran_leaves_it_cancelled():
    row = operation(2)
    assert transitions.cancel([row.job_id]).done == [row.job_id]
    bulk.report(in_db(row))
    assert in_db(row).status == OS.CANCELLED
    assert run_job(row.job_id) is None  # nothing runs it any more


def test_an_operation_whose_job_is_gone_is_failed_not_working_forever():
    row = operation(1)
    Job.objects.filter(pk=row.job_id).delete()
    assert bulk.report(in_db(row)).endswith(bulk.JOB_GONE)
    assert in_db(row).status == OS.FAILED


def test_of_two_settles_one_wins_and_a_running_job_settles_nothing():
    row = operation(1)
    assert not bulk.settle(in_db(row))  # its job is queued: nothing has ended
    Job.objects.filter(pk=row.job_id).update(status=S.CANCELLED)
    first, second = in_db(row), in_db(row)
    assert bulk.settle(first) is True
    assert bulk.settle(second) is False and second.status == OS.CANCELLED


def test_a_settled_operation_is_not_run_again():
    row = operation(2)
    transitions.cancel([row.job_id])
    bulk.report(in_db(row))
    assert bulk.run(row.pk) == {"done": 0, "skipped": 0}
    assert Job.objects.filter(status=S.DEAD).count() == 2


# --- 2. a cancel stops it between batches ----------------------------------------------


def cancel_after_first_batch(monkeypatch, row):
    real, calls = transitions.requeue, []

    def requeue(ids, **kw):
        calls.append(ids)
        if len(calls) == 1:
            transitions.cancel([row.job_id])  # the operator cancels while batch 1 runs
        return real(ids, **kw)

    monkeypatch.setattr(transitions, "requeue", requeue)
    return calls


def test_cancelling_its_job_stops_it_after_the_committed_batch(small_batches, monkeypatch):
    row = operation(8)
    calls = cancel_after_first_batch(monkeypatch, row)
    assert run_job(row.job_id) == S.CANCELLED
    assert len(calls) == 1
    row = in_db(row)
    assert (row.status, row.done, row.skipped, row.matched) == (OS.CANCELLED, 3, 0, 8)
    assert bulk.report(row) == "Cancelled after 3 of 8: requeued 3, skipped 0."
    assert Job.objects.filter(status=S.DEAD).count() == 5
    assert Job.objects.get(pk=row.job_id).status == S.CANCELLED


def test_run_outside_a_worker_also_stops_on_its_jobs_cancel(small_batches, monkeypatch):
    row = operation(5)
    cancel_after_first_batch(monkeypatch, row)
    with pytest.raises(JobCancelled):
        bulk.run(row.pk)
    assert (in_db(row).status, in_db(row).done) == (OS.CANCELLED, 3)


# --- 3. counts that add up, reasons that are true ------------------------------------


def test_a_job_that_starts_matching_while_it_runs_is_not_swept_in(small_batches):
    row = operation(4)
    later = JobFactory(status=S.RETRYING, created_at=timezone.now() - timedelta(minutes=1))
    Job.objects.filter(pk=later.pk).update(status=S.DEAD)  # its last retry died meanwhile
    assert bulk.run(row.pk) == {"done": 4, "skipped": 0}
    row = in_db(row)
    assert row.matched == 4 == row.done + row.skipped
    assert Job.objects.get(pk=later.pk).status == S.DEAD
    assert bulk.report(row) == "Requeued 4, skipped 0."


def test_jobs_that_changed_or_vanished_are_counted_with_their_true_reason(small_batches):
    row = operation(5)
    moved, gone = Job.objects.filter(status=S.DEAD).order_by("id")[:2]
    transitions.requeue([moved.pk])  # someone else requeued it meanwhile
    gone.delete()  # and another was purged
    bulk.run(row.pk)
    row = in_db(row)
    assert row.skipped_reasons == {NOT_DEAD: 1, operations.NOT_FOUND: 1}
    assert row.done + sum(row.skipped_reasons.values()) == row.matched == 5
    text = bulk.report(row)  # reasons in the order the batches met them
    assert text.startswith("Requeued 3, skipped 2 (") and text.endswith(").")
    assert f"1 {NOT_DEAD}" in text and f"1 {operations.NOT_FOUND}" in text


def test_past_the_request_cap_the_job_fixes_and_counts_the_set(monkeypatch, small_batches):
    monkeypatch.setattr(lookups, "COUNT_CAP", 2)
    row = operation(5)
    assert row.matched is None and not OperationTarget.objects.filter(operation=row).exists()
    JobFactory(status=S.DEAD, created_at=timezone.now() + timedelta(seconds=5))  # after
    assert bulk.run(row.pk) == {"done": 5, "skipped": 0}
    assert in_db(row).matched == 5


def test_ids_of_no_job_are_not_found_in_the_report_and_the_audit_log():
    user = staff_with("requeue_job")
    dead, running = JobFactory(status=S.DEAD), JobFactory(status=S.RUNNING)
    missing = "0190d6a8-0000-7000-8000-000000000001"
    report = operations.perform("requeue", user, [dead.pk, running.pk, missing])
    assert report.message == (f"Requeued 1, skipped 2 (1 {NOT_DEAD}, "
                              f"1 {operations.NOT_FOUND}).")
    entry = OperatorAction.objects.get()
    assert (entry.done, entry.skipped) == (1, 2)
    assert entry.skipped_reasons == {NOT_DEAD: 1, operations.NOT_FOUND: 1}
    only_missing = operations.perform("cancel", staff_with("cancel_job"), [missing])
    assert only_missing.message == f"Cancelled 0, skipped 1 {operations.NOT_FOUND}."


# --- 4. its page stops polling once it has ended --------------------------------------


def poll(client, row):
    return client.get(reverse("dashboard:operation", args=[row.pk]), HTTP_HX_REQUEST="true")


@pytest.fixture
def staff_client(client):
    client.force_login(staff_with("requeue_job"))
    return client


def test_the_page_of_an_operation_failed_by_its_job_stops_polling(staff_client, monkeypatch):
    row = operation(1)
    last_attempt(row)
    monkeypatch.setattr(bulk, "run", lambda operation_id: 1 / 0)
    run_job(row.job_id)
    response = poll(staff_client, row)
    assert response.status_code == STOP_POLLING
    assert "ZeroDivisionError" in response.content.decode()


def test_the_page_of_a_reaped_or_cancelled_operation_stops_polling(staff_client):
    lost, cancelled = operation(1), operation(1)
    last_attempt(lost)
    reap(lost)
    transitions.cancel([cancelled.job_id])
    for row, words in ((lost, bulk.WORKER_LOST), (cancelled, "Cancelled after 0 of")):
        first = poll(staff_client, row)  # this read settles the row
        assert words in first.content.decode()
        assert in_db(row).status != OS.RUNNING
        assert poll(staff_client, row).status_code == STOP_POLLING


def test_a_batch_counted_by_another_attempt_meanwhile_is_undone(small_batches, monkeypatch):
    row = operation(6)
    real = bulk._next_batch

    def overtaken(operation_id, cursor):
        ids = real(operation_id, cursor)
        # A newer attempt (this one was reaped and does not know yet) counts the
        # same batch first.
        transitions.requeue(ids)
        OperatorAction.objects.filter(pk=row.pk).update(done=3, cursor=str(ids[-1]))
        return ids

    monkeypatch.setattr(bulk, "_next_batch", overtaken)
    assert bulk.run(row.pk) == {"done": 3, "skipped": 0}
    row = in_db(row)
    # Not 3 done + 3 "not dead or cancelled", and not marked done: the successor goes on.
    assert (row.status, row.done, row.skipped, row.skipped_reasons) == (OS.RUNNING, 3, 0, {})
    assert Job.objects.filter(status=S.DEAD).count() == 3
