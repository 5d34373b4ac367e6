import logging
import os
import re
import socket
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus
from jobs.worker import runner as runner_module
from jobs.worker.runner import execute, run_job
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db
S = JobStatus


def make_due(job):
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now())


def test_success_stores_result_and_closes_the_attempt():
    job = enqueue("tests.add", 2, b=3)
    assert run_job(job.pk) == S.SUCCEEDED
    job.refresh_from_db()
    assert job.status == S.SUCCEEDED and job.result == 5 and job.finished_at
    a = job.attempts.get()
    assert a.status == AttemptStatus.SUCCEEDED and a.duration is not None
    assert (a.worker_host, a.worker_pid) == (socket.gethostname(), os.getpid())
    assert job.lease_owner == "" and job.lease_expires_at is None


def test_failure_records_class_message_and_traceback_then_retries_after_backoff():
    job = enqueue("tests.fail_always", "disk <full>")
    before = timezone.now()
    assert run_job(job.pk) == S.RETRYING
    job.refresh_from_db()
    a = job.attempts.get()
    assert a.status == AttemptStatus.FAILED
    assert a.error_class == "RuntimeError" and a.error_message == "disk <full>"
    assert "Traceback" in a.traceback and "fail_always" in a.traceback
    assert job.last_error == "RuntimeError: disk <full>"
    # tests.fail_always backs off up to 1 s (full jitter): due again within it, not before now.
    assert before <= job.run_after <= timezone.now() + timedelta(seconds=1)
    assert a.retry_at == job.run_after


def test_a_retry_is_not_run_before_its_run_after():
    job = enqueue("tests.fail_always", "x")
    run_job(job.pk)
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() + timedelta(minutes=5))
    assert run_job(job.pk) is None
    assert Job.objects.get(pk=job.pk).attempt_count == 1


def test_exhausted_attempts_go_dead_with_a_dead_letter():
    job = enqueue("tests.fail_always", "still broken")
    statuses = []
    for _ in range(3):
        make_due(job)
        statuses.append(run_job(job.pk))
    assert statuses == [S.RETRYING, S.RETRYING, S.DEAD]
    job.refresh_from_db()
    assert job.status == S.DEAD and job.attempt_count == 3
    assert list(job.attempts.values_list("number", "status")) == [
        (1, "failed"), (2, "failed"), (3, "failed")]
    dl = DeadLetter.objects.get(job=job)
    assert dl.attempts == 3 and dl.error_message == "still broken" and dl.resolved_at is None
    make_due(job)
    assert run_job(job.pk) is None  # dead is final until an operator requeues


def test_permanent_error_skips_remaining_retries():
    job = enqueue("tests.fail_permanent", "card declined")
    assert run_job(job.pk) == S.DEAD
    assert DeadLetter.objects.get(job=job).error_class == "jobs.exceptions.PermanentError"


def test_success_after_retries():
    job = enqueue("tests.fail_until", 3)
    for _ in range(3):
        make_due(job)
        run_job(job.pk)
    job.refresh_from_db()
    assert job.status == S.SUCCEEDED and job.result == 3
    assert list(job.attempts.values_list("status", flat=True)) == ["failed", "failed", "succeeded"]


def test_atomic_task_writes_roll_back_with_a_failure():
    job = enqueue("tests.write_then_fail", "charge-1")
    assert run_job(job.pk) == S.DEAD
    assert not Effect.objects.filter(key="charge-1").exists()


def test_non_atomic_task_keeps_its_writes_and_still_records_the_failure():
    job = enqueue("tests.write_then_fail_non_atomic", "charge-2")
    assert run_job(job.pk) == S.DEAD
    assert Effect.objects.filter(key="charge-2").exists()


def test_result_that_cannot_be_stored_is_a_failure_and_rolls_back():
    job = enqueue("tests.unserializable_result", "r-1")
    assert run_job(job.pk) == S.RETRYING
    a = Job.objects.get(pk=job.pk).attempts.get()
    assert a.error_class == "jobs.exceptions.UnstorableValue"
    assert a.error_message.startswith("the task's result is a ")
    assert "cannot be stored as JSON" in a.error_message
    assert not Effect.objects.filter(key="r-1").exists()


def test_unknown_task_in_the_worker_is_recorded_not_raised():
    job = enqueue("tests.add", 1, 2)
    Job.objects.filter(pk=job.pk).update(task_name="tests.removed_in_this_deploy")
    execute(str(job.pk))
    job.refresh_from_db()
    assert job.status == S.RETRYING
    assert "tests.removed_in_this_deploy" in job.attempts.get().error_message


def test_success_is_written_in_the_same_transaction_as_the_task():
    """The task's INSERT and the job's 'succeeded' UPDATE sit inside one savepoint
    (the test's own transaction wraps the worker's, so its atomic block is a
    savepoint): they commit together or not at all."""
    job = enqueue("tests.write_effect", "welcome-1")
    with CaptureQueriesContext(connection) as captured:
        run_job(job.pk)
    sql = [q["sql"] for q in captured.captured_queries]
    effect = next(i for i, q in enumerate(sql) if q.startswith('INSERT INTO "testapp_effect"'))
    succeeded = next(i for i, q in enumerate(sql)
                     if re.search(r'UPDATE "?jobs_job"? SET "?status"? = \'succeeded\'', q))
    opened = [i for i, q in enumerate(sql[:effect]) if q.startswith("SAVEPOINT")]
    assert opened, "the task did not run inside a transaction"
    name = sql[opened[-1]].split()[-1]
    released = next(i for i, q in enumerate(sql) if q == f"RELEASE SAVEPOINT {name}")
    assert effect < succeeded < released
    assert not any(q == f"ROLLBACK TO SAVEPOINT {name}" for q in sql)
    assert Effect.objects.get(key="welcome-1").job_id == job.pk
    assert Job.objects.get(pk=job.pk).status == S.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_two_runners_racing_for_one_job_id_run_it_once(on_postgres):
    job = enqueue("tests.write_effect", "race-1")
    barrier = threading.Barrier(2)
    outcomes = []

    def runner():
        try:
            barrier.wait()
            outcomes.append(run_job(job.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == sorted([S.SUCCEEDED, None], key=str)
    assert Effect.objects.filter(key="race-1").count() == 1
    assert Attempt.objects.filter(job=job).count() == 1


# --- timeouts, cancel ------------------------------------------------------------


def test_an_overrunning_attempt_is_stopped_and_recorded_as_timed_out():
    job = enqueue("tests.times_out", 5.0)  # task timeout 1 s, 2 attempts
    started = timezone.now()
    assert run_job(job.pk) == S.RETRYING
    a = Job.objects.get(pk=job.pk).attempts.get()
    assert a.status == AttemptStatus.TIMED_OUT
    assert "timeout of 1 s" in a.error_message
    assert (a.finished_at - started).total_seconds() < 3
    make_due(job)
    assert run_job(job.pk) == S.DEAD
    assert DeadLetter.objects.get(job=job).error_class == "TimeoutError"


def test_a_cancelled_queued_job_never_starts():
    from jobs.core.transitions import cancel

    job = enqueue("tests.write_effect", "never-sent")
    assert cancel([job.pk]).done == [job.pk]
    assert run_job(job.pk) is None
    job.refresh_from_db()
    assert job.status == S.CANCELLED and not job.attempts.exists()
    assert not Effect.objects.filter(key="never-sent").exists()


@pytest.mark.django_db(transaction=True)
def test_a_running_job_stops_at_its_next_safe_point_when_cancelled(settings):
    from jobs.core.transitions import cancel

    settings.JOBS = {**settings.JOBS, "LEASE_SECONDS": 0.3}  # heartbeat every 0.1 s
    job = enqueue("tests.cooperative", 10.0, key="half-done")
    canceller = threading.Timer(0.3, lambda: (cancel([job.pk]), connection.close()))
    canceller.start()
    started = timezone.now()
    try:
        assert run_job(job.pk) == S.CANCELLED
    finally:
        canceller.join()
    job.refresh_from_db()
    assert job.status == S.CANCELLED and job.finished_at is not None
    a = job.attempts.get()
    assert a.status == AttemptStatus.CANCELLED
    assert (a.finished_at - started).total_seconds() < 2
    assert not Effect.objects.filter(key="half-done").exists()


@pytest.mark.django_db(transaction=True)
def test_a_reaped_attempt_stops_at_its_next_safe_point_and_writes_nothing(settings):
    """A worker that was frozen past its lease and reaped must not do the work twice:
    its heartbeat finds the job gone, and the task stops at its next safe point."""
    settings.JOBS = {**settings.JOBS, "LEASE_SECONDS": 0.3}  # heartbeat every 0.1 s
    job = enqueue("tests.cooperative", 10.0, key="zombie-effect")

    def reap() -> None:  # what the reaper writes once it believes the worker dead
        row = Job.objects.get(pk=job.pk)
        attempt = Attempt.objects.get(job_id=job.pk, number=row.last_attempt_number)
        transitions.fail(transitions.Claimed(job=row, attempt=attempt),
                         transitions.ErrorInfo("jobs.exceptions.WorkerLost", "simulated"),
                         retry_at=timezone.now() + timedelta(hours=1),
                         attempt_status=AttemptStatus.LOST)
        connection.close()

    reaper = threading.Timer(0.3, reap)
    reaper.start()
    started = timezone.now()
    try:
        assert run_job(job.pk) is None  # the outcome belongs to nobody: nothing recorded
    finally:
        reaper.join()
    assert (timezone.now() - started).total_seconds() < 3  # not the task's 10 s
    job.refresh_from_db()
    assert job.status == S.RETRYING
    assert job.attempts.get().status == AttemptStatus.LOST
    assert not Effect.objects.filter(key="zombie-effect").exists()


class TestAtomicTaskThatWritesNothing:
    """An atomic task that sends no statement leaves nothing to commit: its success is
    one autocommit statement (PostgreSQL). One that writes, or that asks for on_commit
    callbacks, still has its success inside its transaction."""

    pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

    @pytest.fixture
    def succeed_calls(self, monkeypatch, on_postgres):
        assert on_postgres
        seen = []
        real = transitions.succeed

        def spy(*args, **kwargs):
            seen.append(connection.get_autocommit())
            return real(*args, **kwargs)

        monkeypatch.setattr(transitions, "succeed", spy)
        return seen

    def test_a_no_op_succeeds_in_autocommit(self, succeed_calls):
        job = enqueue("tests.noop")
        assert run_job(job.pk) == S.SUCCEEDED
        assert succeed_calls == [True]
        assert Job.objects.get(pk=job.pk).status == S.SUCCEEDED

    def test_a_task_that_writes_succeeds_inside_its_own_transaction(self, succeed_calls):
        job = enqueue("tests.write_effect", "k1")
        assert run_job(job.pk) == S.SUCCEEDED
        assert succeed_calls == [False]
        assert Effect.objects.filter(key="k1").count() == 1

    def test_on_commit_callbacks_run_after_the_success_is_written(self, succeed_calls):
        from tests.testapp.tasks import ON_COMMIT_SAW

        ON_COMMIT_SAW.clear()
        job = enqueue("tests.on_commit_only")
        assert run_job(job.pk) == S.SUCCEEDED
        assert succeed_calls == [False] and ON_COMMIT_SAW == [S.SUCCEEDED]


def _flaky(monkeypatch, failures: int):
    """Outcome writes fail like a database that is restarting, `failures` times."""
    from django.db import OperationalError

    calls = []

    def flaky(real):
        def write(*args, **kwargs):
            calls.append(1)
            if len(calls) <= failures:
                raise OperationalError("server closed the connection unexpectedly")
            return real(*args, **kwargs)
        return write

    for name in ("succeed", "fail"):  # the database is away for every outcome
        monkeypatch.setattr(transitions, name, flaky(getattr(transitions, name)))
    slept: list[float] = []
    monkeypatch.setattr(runner_module.time, "sleep", slept.append)
    return calls, slept


@pytest.mark.django_db(transaction=True)
def test_an_outcome_write_is_retried_with_backoff_through_an_outage_shorter_than_the_lease(
        monkeypatch):
    calls, slept = _flaky(monkeypatch, failures=4)
    job = enqueue("tests.noop")
    assert run_job(job.pk) == S.SUCCEEDED
    job.refresh_from_db()
    assert job.status == S.SUCCEEDED and job.attempts.get().status == AttemptStatus.SUCCEEDED
    assert len(calls) == 5
    # Backoff with jitter: each wait at most twice the one before's ceiling, growing.
    assert all(0.05 <= s <= 0.1 * 2 ** i for i, s in enumerate(slept)) and len(slept) == 4


@pytest.mark.django_db(transaction=True)
def test_an_outcome_write_gives_up_before_the_lease_lapses_and_leaves_the_job_to_the_reaper(
        monkeypatch, settings):
    settings.JOBS = {**settings.JOBS, "LEASE_SECONDS": 3}
    calls, slept = _flaky(monkeypatch, failures=10_000)
    # The lease as the heartbeat last renewed it: 3 s, less the 1 s margin, runs down
    # while the writes wait.
    left = [2.0]
    monkeypatch.setattr(runner_module, "_lease_left", lambda: left[0])
    monkeypatch.setattr(runner_module.time, "sleep",
                        lambda s: (slept.append(s), left.__setitem__(0, left[0] - s)))
    job = enqueue("tests.noop")
    execute(str(job.pk))  # logs "could not record the outcome", never raises
    job.refresh_from_db()
    assert job.status == S.RUNNING  # its lease will lapse; the reaper settles it
    # It stopped trying before the lease (3 s, less the 1 s margin) ran out.
    # It stopped trying (the success, then the failure it became) before the lease ran out.
    assert 0 < sum(slept) <= 2.0 and len(calls) == len(slept) + 2 and left[0] >= 0


def test_the_lease_left_is_read_from_the_running_attempts_heartbeat(monkeypatch):
    beat = type("Beat", (), {"renewed_at": runner_module.time.monotonic() - 1.0,
                             "lease_seconds": 3.0})()
    monkeypatch.setattr(runner_module._state, "beat", beat)
    assert 0.9 <= runner_module._lease_left() <= 1.0  # 3 s lease, renewed 1 s ago, 1 s margin


class TestAttemptLogLines:
    """Each attempt says in the log, from the worker, when it starts and how it ended:
    task, job id, attempt, outcome and duration, written from what the worker holds."""

    def lines(self, caplog, job) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "jobs.runner" and str(job.pk) in r.message]

    def test_a_success_is_one_start_and_one_end_line_without_extra_queries(self, caplog):
        silent, job = enqueue("tests.add", 1, b=1), enqueue("tests.add", 2, b=3)
        with caplog.at_level(logging.ERROR, logger="jobs.runner"), \
                CaptureQueriesContext(connection) as quiet:
            run_job(silent.pk)
        with caplog.at_level(logging.INFO, logger="jobs.runner"), \
                CaptureQueriesContext(connection) as logged:
            assert run_job(job.pk) == S.SUCCEEDED
        start, end = self.lines(caplog, job)
        assert start.levelno == end.levelno == logging.INFO
        assert start.getMessage() == f"job {job.pk} (tests.add) attempt 1 of 3 started"
        assert re.fullmatch(rf"job {job.pk} \(tests\.add\) attempt 1 ended: succeeded "
                            r"in \d+\.\d{3} s", end.getMessage())
        assert len(logged.captured_queries) == len(quiet.captured_queries)
        # Written inside the job's log context: a formatter's %(job)s names it too.
        assert all(r.job_id == str(job.pk) and r.job_task == "tests.add" for r in (start, end))

    def test_a_failure_ends_with_a_warning_naming_the_error_and_what_follows(self, caplog):
        job = enqueue("tests.fail_always", "disk full")
        with caplog.at_level(logging.INFO, logger="jobs.runner"):
            run_job(job.pk)
        start, end = self.lines(caplog, job)
        assert "attempt 1 of 3 started" in start.getMessage()
        assert end.levelno == logging.WARNING
        assert re.fullmatch(rf"job {job.pk} \(tests\.fail_always\) attempt 1 ended: failed "
                            r"with RuntimeError, job retrying in \d+\.\d{3} s", end.getMessage())
