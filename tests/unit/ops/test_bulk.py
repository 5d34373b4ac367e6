"""An action on every matching job: run by a job of its own, batch by batch, truthfully."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from jobs.core import transitions
from jobs.models import Job, JobStatus, OperationStatus, OperatorAction
from jobs.ops import bulk, operations
from tests.factories import JobFactory
from tests.ui.dashboard.factories import staff_with

pytestmark = pytest.mark.django_db
S = JobStatus


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(bulk, "BATCH", 3)


def test_it_needs_the_actions_own_permission():
    with pytest.raises(PermissionDenied):
        bulk.start("requeue", staff_with("cancel_job"), {"status": S.DEAD})
    assert not OperatorAction.objects.exists()


def test_start_writes_the_audit_row_and_its_job_together():
    user = staff_with("requeue_job")
    for _ in range(4):
        JobFactory(status=S.DEAD)
    row = bulk.start("requeue", user, {"status": S.DEAD, "task": "tests.add"})
    assert row.status == OperationStatus.RUNNING and row.matched == 4
    assert row.username == user.username
    assert row.target["filter"]["status"] == "dead" and "created_before" in row.target["filter"]
    assert Job.objects.get(pk=row.job_id).task_name == bulk.TASK


def test_it_acts_on_every_match_batch_by_batch_and_reports_the_truth(small_batches):
    user = staff_with("requeue_job")
    dead = [JobFactory(status=S.DEAD) for _ in range(7)]
    JobFactory(status=S.SUCCEEDED)
    row = bulk.start("requeue", user, {"task": "tests.add"})  # dead and succeeded match
    assert bulk.run(row.pk) == {"done": 7, "skipped": 1}
    row.refresh_from_db()
    assert row.status == OperationStatus.DONE and row.finished_at
    assert row.skipped_reasons == {"that are not dead or cancelled": 1}
    assert bulk.report(row) == "Requeued 7, skipped 1 (1 that are not dead or cancelled)."
    assert Job.objects.filter(pk__in=[j.pk for j in dead], status=S.QUEUED).count() == 7


def test_a_crash_mid_run_keeps_committed_batches_and_the_retry_finishes(small_batches,
                                                                          monkeypatch):
    user = staff_with("requeue_job")
    for _ in range(8):
        JobFactory(status=S.DEAD)
    row = bulk.start("requeue", user, {"status": S.DEAD})
    real = transitions.requeue
    calls = []

    def dies_on_the_second_batch(ids, **kw):
        calls.append(ids)
        if len(calls) == 2:
            real(ids, **kw)  # its writes roll back with the batch's transaction
            raise RuntimeError("worker killed")
        return real(ids, **kw)

    monkeypatch.setattr(transitions, "requeue", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        bulk.run(row.pk)
    row.refresh_from_db()
    assert (row.done, row.skipped, row.status) == (3, 0, OperationStatus.RUNNING)
    assert Job.objects.filter(status=S.DEAD).count() == 5  # the failed batch rolled back
    assert bulk.run(row.pk) == {"done": 8, "skipped": 0}
    assert bulk.run(row.pk) == {"done": 8, "skipped": 0}  # a second run changes nothing
    assert not Job.objects.filter(status=S.DEAD).exists()


def test_jobs_enqueued_after_the_start_are_not_swept_in():
    user = staff_with("cancel_job")
    before = JobFactory()
    row = bulk.start("cancel", user, {"status": S.QUEUED})
    later = JobFactory(created_at=timezone.now() + timedelta(seconds=1))
    bulk.run(row.pk)
    assert Job.objects.get(pk=before.pk).status == S.CANCELLED
    assert Job.objects.get(pk=later.pk).status == S.QUEUED


def test_cancel_all_never_cancels_the_operations_own_job():
    user = staff_with("cancel_job")
    JobFactory()
    row = bulk.start("cancel", user, {})
    bulk.run(row.pk)
    assert Job.objects.get(pk=row.job_id).status == S.QUEUED


def test_an_operation_whose_job_died_reads_as_failed_with_its_counts():
    user = staff_with("requeue_job")
    row = bulk.start("requeue", user, {"status": S.DEAD})
    Job.objects.filter(pk=row.job_id).update(status=S.DEAD, last_error="RuntimeError: db gone")
    assert bulk.report(row).startswith("Stopped by an error after 0 of 0: requeued 0, skipped 0.")
    row.refresh_from_db()
    assert row.status == OperationStatus.FAILED and row.error == "RuntimeError: db gone"


def test_per_page_actions_are_in_the_audit_log_with_their_counts():
    user = staff_with("requeue_job")
    dead, running = JobFactory(status=S.DEAD), JobFactory(status=S.RUNNING)
    operations.perform("requeue", user, [dead.pk, running.pk])
    entry = OperatorAction.objects.get()
    assert (entry.action, entry.username, entry.done, entry.skipped) == (
        "requeue", user.username, 1, 1)
    assert set(entry.target["ids"]) == {str(dead.pk), str(running.pk)}
