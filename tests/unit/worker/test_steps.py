import os
import signal
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import enqueue, task
from jobs.core import transitions
from jobs.exceptions import TaskRegistrationError
from jobs.models import AttemptStatus, DeadLetter, Job, JobStatus, Step, StepStatus
from jobs.ops.presentation import job_progress
from jobs.worker import runner
from jobs.worker.runner import run_job
from tests.cluster import wait_for
from tests.testapp import tasks as testapp_tasks
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db
S = JobStatus


def make_due(job):
    Job.objects.filter(pk=job.pk).update(run_after=job.created_at)


def runs_of(job, step):
    return Effect.objects.filter(key__startswith=f"{job.pk}:{step}:").count()


def steps_of(job):
    return list(Step.objects.filter(job=job).order_by("position")
                .values_list("name", "status", "attempts"))


def test_planned_steps_show_as_pending_at_enqueue():
    job = enqueue("tests.five_steps", [])
    assert steps_of(job) == [(n, "pending", 0) for n in ("s1", "s2", "s3", "s4", "s5")]
    assert job_progress(list(job.steps.all()))["steps_planned"] == 5


def test_a_failure_at_step_3_retries_from_step_3_only():
    job = enqueue("tests.five_steps", [1])
    assert run_job(job.pk) == S.RETRYING
    assert steps_of(job)[:3] == [("s1", "succeeded", 1), ("s2", "succeeded", 1),
                                 ("s3", "failed", 1)]
    failed = job.attempts.get()
    assert failed.step.name == "s3" and "step 3 fails" in failed.error_message
    make_due(job)
    assert run_job(job.pk) == S.SUCCEEDED
    # Steps 1-2 ran once; step 3's first try was rolled back with its failure.
    assert [runs_of(job, s) for s in ("s1", "s2", "s3", "s4", "s5")] == [1, 1, 1, 1, 1]
    assert steps_of(job) == [("s1", "succeeded", 1), ("s2", "succeeded", 1),
                             ("s3", "succeeded", 2), ("s4", "succeeded", 1),
                             ("s5", "succeeded", 1)]
    job.refresh_from_db()
    assert job.result == 5  # 1 -> 2 -> 3 -> 4 -> 5: results flowed from step to step
    assert job_progress(list(job.steps.all()))["fraction"] == 1.0


def test_resume_after_dead_letter_with_a_raised_step_limit():
    job = enqueue("tests.limited", "hello world")
    assert run_job(job.pk) == S.DEAD
    summarize = Step.objects.get(job=job, name="summarize")
    assert summarize.status == StepStatus.FAILED and "max_chars=5" in summarize.error_message
    assert summarize.limits == {"max_chars": 5}
    assert DeadLetter.objects.filter(job=job, resolved_at__isnull=True).exists()

    Step.objects.filter(pk=summarize.pk).update(limits={"max_chars": 500})  # the operator
    assert transitions.resume([job.pk]).done == [job.pk]
    assert steps_of(job) == [("fetch", "succeeded", 1), ("summarize", "pending", 0),
                             ("store", "pending", 0)]
    assert run_job(job.pk) == S.SUCCEEDED
    job.refresh_from_db()
    assert job.result == "HELLO WORLD"
    assert runs_of(job, "fetch") == 1  # not rerun
    assert DeadLetter.objects.get(job=job).note == "resumed"


def test_requeue_starts_over_while_resume_keeps_results():
    job = enqueue("tests.limited", "hello world")
    run_job(job.pk)
    transitions.requeue([job.pk])
    assert [s for _, s, _ in steps_of(job)] == ["pending"] * 3
    assert Step.objects.get(job=job, name="fetch").result is None


def test_duplicate_step_names_are_refused_clearly():
    job = enqueue("tests.duplicate_step")
    assert run_job(job.pk) == S.DEAD  # a bug, not a transient failure: no retries
    a = Job.objects.get(pk=job.pk).attempts.get()
    assert "step 'same' ran twice" in a.error_message and "unique" in a.error_message


def test_duplicate_planned_names_are_refused_at_registration():
    with pytest.raises(TaskRegistrationError, match="repeated"):
        task(name="tests.dup_plan", steps=["a", "b", "a"])(lambda: None)


def test_steps_in_an_atomic_task_are_refused_with_advice():
    job = enqueue("tests.step_in_atomic")
    run_job(job.pk)
    assert "commit on its own" in Job.objects.get(pk=job.pk).attempts.get().error_message
    with pytest.raises(TaskRegistrationError, match="cannot also be atomic"):
        task(name="tests.atomic_steps", steps=["a"], atomic=True)(lambda: None)


def test_progress_reports_are_throttled():
    job = enqueue("tests.progress", 10_000)
    with CaptureQueriesContext(connection) as queries:
        assert run_job(job.pk) == S.SUCCEEDED
    progress_writes = [q for q in queries.captured_queries
                       if q["sql"].startswith("UPDATE") and "progress_current" in q["sql"]]
    assert 1 <= len(progress_writes) <= 3
    step = Step.objects.get(job=job)
    assert (step.progress_current, step.progress_total) == (10_000, 10_000)
    assert step.progress_message == "item 10000"


def test_a_step_timeout_stops_the_step_and_names_it():
    job = enqueue("tests.step_limits")
    assert run_job(job.pk) == S.RETRYING
    a = Job.objects.get(pk=job.pk).attempts.get()
    assert a.status == AttemptStatus.TIMED_OUT
    assert "step 'slow' exceeded its timeout of 1 s" in a.error_message
    assert Step.objects.get(job=job).status == StepStatus.FAILED


def test_a_step_with_its_own_attempt_budget_ends_the_job_when_spent():
    job = enqueue("tests.step_budget")  # the job allows 5, the step only 2
    statuses = []
    for _ in range(3):
        make_due(job)
        statuses.append(run_job(job.pk))
    assert statuses == [S.RETRYING, S.RETRYING, S.DEAD]
    assert "used all 2 of its attempts" in DeadLetter.objects.get(job=job).error_message


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_kill_9_during_step_2_resumes_at_step_2(cluster_factory, on_postgres):
    import os
    import signal

    job = enqueue("tests.crash_in_step2", 30.0)
    cluster = cluster_factory(env={"JOBS_LEASE_SECONDS": "1",
                                   "JOBS_REAPER_INTERVAL_SECONDS": "0.2"})
    assert wait_for(
        lambda: Step.objects.filter(job=job, name="two", status="running").exists(), 15
    ), cluster.log()
    owner = Job.objects.get(pk=job.pk).lease_owner
    os.kill(int(owner.rsplit(":", 1)[1]), signal.SIGKILL)

    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == S.SUCCEEDED, 30), cluster.log()
    assert runs_of(job, "one") == 1
    assert runs_of(job, "two") == 1
    assert list(Job.objects.get(pk=job.pk).attempts.order_by("number")
                .values_list("status", "step__name")) == [("lost", "two"), ("succeeded", None)]
    assert steps_of(job) == [("one", "succeeded", 1), ("two", "succeeded", 2)]


@pytest.mark.parametrize(
    ("proposed", "message"),
    [
        ([1], "JSON object"),
        ({"max_tokns": 10}, "Unknown limit"),
        ({"max_tokens": "lots"}, "of type int"),
        ({"max_tokens": True}, "of type int"),
        ({"max_tokens": 0}, "positive"),
    ],
)
def test_operator_limit_edits_are_validated(proposed, message):
    from django.core.exceptions import ValidationError

    from jobs.ops.operations import validate_limits

    with pytest.raises(ValidationError, match=message):
        validate_limits({"max_tokens": 1000}, proposed)


def test_a_valid_limit_edit_merges_over_the_declared_defaults():
    from jobs.ops.operations import validate_limits

    assert validate_limits({"max_tokens": 1000, "model": "s"}, {"max_tokens": 4000}) == {
        "max_tokens": 4000, "model": "s"}


def test_demo_catalog_import_dies_at_transform_and_resumes_with_a_raised_limit():
    job = enqueue("demo.import_catalog", "partner.csv", max_rows=500)
    assert run_job(job.pk) == S.DEAD
    assert [s for _, s, _ in steps_of(job)] == ["succeeded", "succeeded", "failed",
                                                "pending", "pending"]
    step = Step.objects.get(job=job, name="transform")
    Step.objects.filter(pk=step.pk).update(limits={"max_rows": 5000})
    transitions.resume([job.pk])
    assert run_job(job.pk) == S.SUCCEEDED
    assert Job.objects.get(pk=job.pk).result == {"published": 1197}


def test_a_shutdown_interrupt_inside_a_step_gives_it_back_pending_not_failed(monkeypatch):
    """SIGUSR1 (grace period over) mid-step: the job is released and the step did not
    fail; the next attempt runs it first, and the earlier step is not run again."""
    job = enqueue("tests.crash_in_step2", 10.0)  # step "two" sleeps on attempt 1
    previous = {sig: signal.getsignal(sig) for sig in (runner.DRAIN_SIGNAL,
                                                        runner.INTERRUPT_SIGNAL)}
    monkeypatch.setattr(runner._state, "draining", False)
    runner.install_worker_signal_handlers()
    interrupt = threading.Timer(0.5, os.kill, (os.getpid(), runner.INTERRUPT_SIGNAL))
    interrupt.start()
    try:
        assert run_job(job.pk) == S.QUEUED
    finally:
        interrupt.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runner._state.draining = False
    assert steps_of(job) == [("one", StepStatus.SUCCEEDED, 1), ("two", StepStatus.PENDING, 1)]
    attempt = Job.objects.get(pk=job.pk).attempts.get()
    assert attempt.status == AttemptStatus.INTERRUPTED
    assert run_job(job.pk) == S.SUCCEEDED
    assert runs_of(job, "one") == 1 and runs_of(job, "two") == 1


@pytest.mark.django_db(transaction=True)
def test_progress_shows_while_the_step_runs_not_only_at_its_commit():
    """The heartbeat thread writes progress on its own connection: another connection
    (the dashboard's) reads it while the step's transaction is still open."""
    job = enqueue("tests.progress_then_wait")
    def work():
        try:
            run_job(job.pk)
        finally:
            connection.close()  # the thread's own: left open, the test database can't go

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert testapp_tasks.PROGRESS_REPORTED.wait(10)
        seen = wait_for(lambda: Step.objects.filter(job=job, progress_current=3).exists(), 5)
        assert seen, "the step's progress did not show while it ran"
        assert Step.objects.get(job=job).status == StepStatus.RUNNING
    finally:
        testapp_tasks.MAY_FINISH.set()
        worker.join(10)
        connection.close()
    step = Step.objects.get(job=job)
    assert step.status == StepStatus.SUCCEEDED and step.progress_current == 10  # its last
