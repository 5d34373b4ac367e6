"""A deadline that fired is a timeout, whatever the task does after it (issue 21).

A task that catches its timeout (a bare `except:` around a long call) must not be
recorded `succeeded` with the result of its cut-short work, and an atomic task's
writes must not commit; the same for a step's own timeout.
"""

import signal
import time

import pytest

from jobs import current_job, enqueue, task
from jobs.models import AttemptStatus, Job, JobStatus, Step, StepStatus
from jobs.worker.runner import run_job
from jobs.worker.timeouts import JobTimeout, StepTimeout, deadline, fired
from tests.testapp.models import Effect
from tests.testapp.tasks import FAST

pytestmark = pytest.mark.django_db
S = JobStatus


@task(name="tests.timeouts.swallows", timeout=1, max_attempts=2, backoff=FAST)
def swallows_its_timeout(key: str) -> str:
    Effect.objects.create(key=key)  # inside the atomic task's transaction
    try:
        time.sleep(5)
    except:  # noqa: E722 - the careless task under test
        return "cut short"
    return "finished"


@task(name="tests.timeouts.swallows_then_raises", timeout=1, max_attempts=1)
def swallows_then_raises(key: str) -> None:
    Effect.objects.create(key=key)
    try:
        time.sleep(5)
    except BaseException:  # noqa: BLE001
        raise ValueError("cleanup after the timeout failed") from None


@task(name="tests.timeouts.step_swallows", max_attempts=2, backoff=FAST, steps=["slow", "after"])
def step_swallows(key: str) -> str:
    ctx = current_job()

    def slow() -> str:
        Effect.objects.create(key=key)  # inside the step's transaction
        try:
            time.sleep(5)
        except:  # noqa: E722
            return "cut short"
        return "finished"

    return ctx.step("slow", slow, timeout=1)


@task(name="tests.timeouts.task_catches_step_timeout", max_attempts=2, backoff=FAST,
      steps=["slow", "after"])
def task_catches_step_timeout(key: str) -> str:
    ctx = current_job()
    try:
        ctx.step("slow", time.sleep, 5, timeout=1)
    except StepTimeout:
        pass
    try:
        # No step starts once a deadline of the attempt fired.
        return ctx.step("after", lambda: Effect.objects.create(key=key) and "after ran")
    except JobTimeout:
        return "carried on anyway"


def test_a_task_that_catches_its_timeout_is_recorded_timed_out_and_its_writes_roll_back():
    job = enqueue("tests.timeouts.swallows", "swallowed-1")
    started = time.monotonic()
    assert run_job(job.pk) == S.RETRYING
    assert time.monotonic() - started < 3
    job.refresh_from_db()
    assert job.result is None
    a = job.attempts.get()
    assert a.status == AttemptStatus.TIMED_OUT and a.error_class == "TimeoutError"
    assert "timeout of 1 s" in a.error_message
    assert not Effect.objects.filter(key="swallowed-1").exists()


def test_a_task_that_raises_something_else_after_its_timeout_is_still_timed_out():
    job = enqueue("tests.timeouts.swallows_then_raises", "swallowed-2")
    assert run_job(job.pk) == S.DEAD
    a = Job.objects.get(pk=job.pk).attempts.get()
    assert a.status == AttemptStatus.TIMED_OUT and "timeout of 1 s" in a.error_message
    assert "cleanup after the timeout failed" in a.traceback  # what the task did, kept
    assert not Effect.objects.filter(key="swallowed-2").exists()


def test_a_step_that_catches_its_timeout_fails_timed_out_and_does_not_checkpoint():
    job = enqueue("tests.timeouts.step_swallows", "swallowed-3")
    assert run_job(job.pk) == S.RETRYING
    step = Step.objects.get(job=job, name="slow")
    assert step.status == StepStatus.FAILED and step.result is None
    assert "exceeded its timeout of 1 s" in step.error_message
    a = Job.objects.get(pk=job.pk).attempts.get()
    assert a.status == AttemptStatus.TIMED_OUT
    assert "step 'slow' exceeded its timeout of 1 s" in a.error_message
    assert not Effect.objects.filter(key="swallowed-3").exists()


def test_a_task_that_catches_its_steps_timeout_is_timed_out_and_starts_no_other_step():
    job = enqueue("tests.timeouts.task_catches_step_timeout", "after-4")
    assert run_job(job.pk) == S.RETRYING
    job.refresh_from_db()
    assert job.result is None
    a = job.attempts.get()
    assert a.status == AttemptStatus.TIMED_OUT
    assert "step 'slow' exceeded its timeout of 1 s" in a.error_message
    assert Step.objects.get(job=job, name="after").status == StepStatus.PENDING
    assert not Effect.objects.filter(key="after-4").exists()


class TestDeadline:
    def test_a_swallowed_deadline_is_raised_again_when_the_block_ends(self):
        with pytest.raises(JobTimeout, match="late"), deadline(0.05, lambda: JobTimeout("late")):
            try:
                time.sleep(1)
            except JobTimeout:
                pass
        assert fired() is None and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    def test_an_inner_deadline_that_fired_makes_the_outer_block_end_with_it(self):
        with pytest.raises(StepTimeout, match="inner"), deadline(5, JobTimeout):
            try:
                with deadline(0.05, lambda: StepTimeout("inner")):
                    time.sleep(1)
            except StepTimeout:
                pass
            assert isinstance(fired(), StepTimeout)
            remaining, _ = signal.getitimer(signal.ITIMER_REAL)
            assert 3 < remaining <= 5  # the outer deadline was re-armed
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    def test_a_block_that_did_not_overrun_ends_as_it_would(self):
        with deadline(5, JobTimeout):
            pass
        with pytest.raises(KeyError), deadline(5, JobTimeout):
            raise KeyError("mine")
        assert fired() is None
