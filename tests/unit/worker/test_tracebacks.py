"""A stored traceback starts at the task's own code: the worker's frames that sit
above every task are left out, the task's and everything below them are kept."""

import re

import pytest

from jobs import enqueue
from jobs.core import serialization
from jobs.core.transitions import ErrorInfo
from jobs.models import Attempt, JobStatus, Step
from jobs.worker.runner import run_job

pytestmark = pytest.mark.django_db
HEAD = "Traceback (most recent call last):\n"


def frames(traceback: str) -> list[tuple[str, str]]:
    """(file, function) of each frame, top first."""
    return re.findall(r'^  File "([^"]+)", line \d+, in (\S+)$', traceback, re.M)


def test_a_failed_attempt_s_traceback_starts_at_the_task_that_raised():
    job = enqueue("tests.fail_always", "disk full")
    assert run_job(job.pk) == JobStatus.RETRYING
    traceback = Attempt.objects.get(job=job).traceback
    assert traceback.startswith(HEAD)
    assert frames(traceback) == [(frames(traceback)[0][0], "fail_always")]
    assert frames(traceback)[0][0].endswith("tests/testapp/tasks.py")
    assert "jobs/worker/runner.py" not in traceback
    assert traceback.endswith("RuntimeError: disk full\n")


def test_a_failed_step_starts_at_its_function_and_the_attempt_at_the_task():
    job = enqueue("tests.limited", "x" * 50)
    assert run_job(job.pk) == JobStatus.DEAD
    step = Step.objects.get(job=job, name="summarize")
    assert [f for _, f in frames(step.traceback)] == ["_summarize"]
    attempt = Attempt.objects.get(job=job)
    functions = [f for _, f in frames(attempt.traceback)]
    # The task first; the engine's frames *between* the task and its step stay:
    # they say how the task reached the step's function.
    assert functions[0] == "limited" and functions[-1] == "_summarize"
    assert "step" in functions and "_run_task" not in functions and "_invoke" not in functions
    assert "ValueError: text of 50 chars exceeds max_chars=5" in attempt.traceback


def test_an_error_of_the_engine_alone_keeps_every_frame():
    """No frame is a task's (the engine failed by itself): nothing is left out."""
    try:
        serialization.stored_json(object(), "the result", 1000)
    except Exception as exc:  # noqa: BLE001
        error = exc
    error.__traceback__ = error.__traceback__.tb_next  # drop this test's own frame
    assert error.__traceback__ is not None
    stored = ErrorInfo.from_exception(error).traceback
    listed = frames(stored)
    assert listed and all("/jobs/core/" in file for file, _ in listed)
    assert stored.startswith(HEAD) and stored.count('  File "') == len(listed)


def test_each_exception_of_a_chain_starts_at_the_task():
    job = enqueue("tests.fail_chained", "sku-7")
    assert run_job(job.pk) == JobStatus.DEAD
    traceback = Attempt.objects.get(job=job).traceback
    cause, effect = traceback.split("\nThe above exception was the direct cause")
    assert [f for _, f in frames(cause)] == ["fail_chained", "_lookup"]
    assert [f for _, f in frames(effect)] == ["fail_chained"]
    assert cause.startswith(HEAD) and "KeyError: 'sku-7'" in cause
    assert effect.endswith("LookupError: no price for sku-7\n")
