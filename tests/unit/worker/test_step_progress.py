"""progress(current, total, message) with bad input (issue 21): bad text is made storable
and never kills the job; bad figures raise InvalidProgress naming the argument and the
rule, before any SQL, never a DataError from the database."""

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import current_job, enqueue, task
from jobs.core import transitions
from jobs.exceptions import InvalidProgress, JobsError
from jobs.models import Job, JobStatus, Step, StepStatus
from jobs.worker import steps as steps_module
from jobs.worker.runner import run_job
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db
S = JobStatus

# What the next run of tests.progress.reports reports, and what it saw.
REPORT: dict = {}


@task(name="tests.progress.reports", max_attempts=1, steps=["work"])
def reports(key: str) -> str:
    def work() -> str:
        try:
            current_job().progress(*REPORT["args"])
        except JobsError as exc:
            REPORT["refused"] = exc
        Effect.objects.create(key=key)  # the step's transaction is still usable
        return "done"

    return current_job().step("work", work)


@pytest.fixture
def in_step_transaction(monkeypatch):
    """Every report is written by the step itself (not the heartbeat's connection), so
    the test reads it back at once."""
    monkeypatch.setattr(steps_module.heartbeat, "report_progress", lambda *a: False)
    REPORT.clear()
    yield REPORT
    REPORT.clear()


def run_reporting(args, key):
    REPORT["args"] = args
    job = enqueue("tests.progress.reports", key)
    status = run_job(job.pk)
    return status, Step.objects.get(job=job, name="work")


@pytest.mark.parametrize("message, stored", [
    ("a\x00b", "ab"),
    ("bad \ud800 text", "bad \ufffd text"),
    ("\x00" * 300, ""),
])
def test_a_hostile_message_is_stored_cleaned_and_the_job_succeeds(in_step_transaction,
                                                                   message, stored):
    status, step = run_reporting((3, 10, message), f"msg-{len(message)}-{stored[:3]}")
    assert status == S.SUCCEEDED and "refused" not in REPORT
    assert (step.progress_current, step.progress_total, step.progress_message) == (3, 10, stored)


def test_a_long_message_is_cut_to_the_column_with_a_marker(in_step_transaction):
    status, step = run_reporting((1, None, "x" * 1000), "long-msg")
    assert status == S.SUCCEEDED
    assert len(step.progress_message) == 255 and "more characters]" in step.progress_message


@pytest.mark.parametrize("current, total, names", [
    (math.nan, 10, "current"),
    (math.inf, None, "current"),
    (-1, 10, "current"),
    (2 ** 63, None, "current"),
    pytest.param(10 ** 5000, None, "current", id="int-of-5000-digits"),
    (True, 10, "current"),
    (1.0, 10, "current"),
    ("3", 10, "current"),
    (3, math.nan, "total"),
    (3, -math.inf, "total"),
    (0, -1, "total"),
    (0, 2 ** 64, "total"),
    (1, False, "total"),
    (11, 10, "must not exceed total"),
])
def test_bad_figures_are_refused_naming_the_argument_and_nothing_is_written(
    in_step_transaction, current, total, names,
):
    status, step = run_reporting((current, total, "m"), f"figures-{names}")
    assert status == S.SUCCEEDED  # the task caught the project's own error
    refused = REPORT["refused"]
    assert isinstance(refused, InvalidProgress) and isinstance(refused, ValueError)
    assert names in str(refused)
    assert (step.progress_current, step.progress_total, step.progress_message) == (None, None, "")
    assert Effect.objects.filter(key=f"figures-{names}").exists()


def test_a_refused_report_sends_no_sql_and_a_message_must_be_text(in_step_transaction):
    with CaptureQueriesContext(connection) as captured:
        for args in [(math.nan, 1, ""), (1, 2, None), (5, 4, "")]:
            with pytest.raises(InvalidProgress):
                transitions.step_progress(1, 1, *args)
    assert captured.captured_queries == []
    with pytest.raises(InvalidProgress, match="message must be a str"):
        transitions.progress_values(1, 2, b"bytes")


def test_the_bounds_themselves_are_stored(in_step_transaction):
    biggest = 2 ** 63 - 1
    status, step = run_reporting((biggest, biggest, ""), "bounds")
    assert status == S.SUCCEEDED and "refused" not in REPORT
    assert (step.progress_current, step.progress_total) == (biggest, biggest)
    assert Step.objects.get(pk=step.pk).status == StepStatus.SUCCEEDED
    assert Job.objects.get(pk=step.job_id).status == S.SUCCEEDED
