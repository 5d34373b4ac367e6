"""Whatever a task raises, its attempt ends `failed` with that cause, at once:
never 'could not record the outcome', never a 'lost worker' a lease later."""

import pytest

import tests.testapp.hostile  # noqa: F401 - registers the hostile.* tasks
from jobs import enqueue
from jobs.core.serialization import CUT_MARKER
from jobs.models import AttemptStatus, DeadLetter, Job, JobStatus
from jobs.worker.runner import run_job

pytestmark = pytest.mark.django_db


def outcome(job):
    job = Job.objects.get(pk=job.pk)
    return job, job.attempts.get()


@pytest.mark.parametrize(
    ("kind", "stored"),
    [("surrogate", "bad \ufffd text"), ("nul", "ab")],
)
def test_text_the_database_refuses_is_made_storable(kind, stored):
    job = enqueue("hostile.raise_text", kind)
    assert run_job(job.pk) == JobStatus.DEAD
    job, attempt = outcome(job)
    assert (attempt.status, attempt.error_class, attempt.error_message) == (
        AttemptStatus.FAILED, "ValueError", stored)
    assert job.last_error == f"ValueError: {stored}"
    assert DeadLetter.objects.get(job=job).error_message == stored


def test_a_huge_message_is_cut_with_a_marker_saying_how_much(settings):
    settings.JOBS = {**settings.JOBS, "MAX_ERROR_CHARS": 500, "MAX_TRACEBACK_CHARS": 2000}
    job = enqueue("hostile.raise_text", "huge")
    assert run_job(job.pk) == JobStatus.DEAD
    job, attempt = outcome(job)
    message = attempt.error_message
    assert len(message) == 500 and len(attempt.traceback) <= 2000
    kept = message.index("…")
    assert message == "x" * kept + CUT_MARKER.format(n=1_000_000 - kept)
    assert attempt.traceback.startswith("Traceback (most recent call last)")


def test_an_exception_whose_str_raises_is_named_by_a_placeholder():
    job = enqueue("hostile.unprintable")
    assert run_job(job.pk) == JobStatus.DEAD
    _, attempt = outcome(job)
    assert attempt.error_class == "tests.testapp.hostile.Unprintable"
    assert attempt.error_message == (
        "<unprintable Unprintable: its __str__ raised RuntimeError>")
    assert "raise Unprintable()" in attempt.traceback


@pytest.mark.parametrize(
    ("name", "error_class"),
    [("hostile.exit", "SystemExit"), ("hostile.keyboard_interrupt", "KeyboardInterrupt")],
)
def test_base_exceptions_from_task_code_are_failures_and_the_worker_goes_on(name, error_class):
    job = enqueue(name)
    assert run_job(job.pk) == JobStatus.DEAD  # returned: the worker process was not ended
    _, attempt = outcome(job)
    assert (attempt.status, attempt.error_class) == (AttemptStatus.FAILED, error_class)
    after = enqueue("tests.add", 1, 2)
    assert run_job(after.pk) == JobStatus.SUCCEEDED


def test_a_result_over_the_size_limit_fails_the_attempt_saying_why():
    job = enqueue("hostile.huge_result")
    assert run_job(job.pk) == JobStatus.DEAD
    job, attempt = outcome(job)
    assert job.result is None
    assert attempt.error_message == (
        "the task's result: larger than the limit of 1,000,000 bytes as JSON")


def test_the_error_is_stored_once_the_job_and_its_dead_letter_point_at_it(settings):
    settings.JOBS = {**settings.JOBS, "MAX_ERROR_CHARS": 100_000}
    job = enqueue("hostile.raise_text", "huge")
    assert run_job(job.pk) == JobStatus.DEAD
    job, attempt = outcome(job)
    letter = DeadLetter.objects.select_related("attempt").get(job=job)
    assert letter.attempt == attempt and letter.error_message == attempt.error_message
    assert len(attempt.error_message) == 100_000
    assert len(job.last_error) <= 300 and job.last_error.startswith("ValueError: xxx")
