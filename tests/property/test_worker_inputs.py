"""Hostile input from inside a running task (issue 21, point 5): progress() figures and
messages, once() keys, and the task's own result.

Each value either works and reads back exactly, or is refused by the project's own
error (a jobs.exceptions.JobsError) naming the rule; a refusal writes nothing and
leaves the task's transaction usable, and no progress message ends a job dead.
Jobs run in-process (run_job), as in tests/unit/worker/test_runner.py; the values
reach the tasks through module-level holders, since most of them could not be
passed as job arguments.
"""

import importlib
import math
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from jobs import current_job, enqueue, once, task
from jobs.core.serialization import storable_text
from jobs.exceptions import InvalidOperationKey, InvalidProgress, JobsError
from jobs.models import AttemptStatus, Job, JobStatus, OperationKey, Step
from jobs.worker import steps as steps_module
from jobs.worker.runner import run_job
from tests import strategies as hs
from tests.strategies import same
from tests.testapp.models import Effect

pytestmark = [pytest.mark.django_db, pytest.mark.property]
S = JobStatus
BIGINT = 2 ** 63 - 1

# What the next property task gets, and what it saw.
GIVEN: dict = {}


@task(name="property.progress", max_attempts=1, steps=["work"])
def reports_progress(effect: str) -> str:
    def work() -> str:
        try:
            current_job().progress(*GIVEN["progress"])
        except JobsError as exc:
            GIVEN["refused"] = exc
        Effect.objects.create(key=effect)  # the step's transaction is still usable
        return "done"

    return current_job().step("work", work)


@task(name="property.once", max_attempts=1)
def records_key(effect: str) -> bool | None:
    try:
        recorded = once(GIVEN["key"])
    except JobsError as exc:
        GIVEN["refused"] = exc
        recorded = None
    Effect.objects.create(key=effect)  # the task's transaction is still usable
    return recorded


@task(name="property.returns", max_attempts=1)
def returns_value() -> object:
    return GIVEN["result"]


@pytest.fixture
def given_values(monkeypatch):
    # Progress written by the step itself, not by the heartbeat's own connection
    # (which cannot see this test's uncommitted rows), so it reads back at once.
    monkeypatch.setattr(steps_module.heartbeat, "report_progress", lambda *a: False)
    GIVEN.clear()
    yield GIVEN
    GIVEN.clear()


def _count_rule(value, name: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"progress {name} must be an int"
    if not 0 <= value <= BIGINT:
        return f"progress {name} must be between 0 and"
    return None


def progress_rule(current, total) -> str | None:
    """The rule a report breaks (the text its refusal must carry), or None: written
    out here, not read from the code."""
    rule = _count_rule(current, "current")
    if rule is None and total is not None:
        rule = _count_rule(total, "total")
        if rule is None and current > total:
            rule = "must not exceed total"
    return rule


counts = st.one_of(st.integers(min_value=0, max_value=BIGINT), hs.huge_ints, hs.extreme_floats,
                   st.booleans())


@given(current=counts, total=st.one_of(st.none(), counts), message=hs.nasty_text)
@example(current=1, total=2, message="a\x00b")
@example(current=1, total=None, message="bad \ud800 text")
@example(current=math.nan, total=10, message="")
@example(current=2 ** 63, total=None, message="")
@example(current=-1, total=None, message="")
@example(current=True, total=None, message="")
@example(current=5, total=4, message="")
@example(current=BIGINT, total=BIGINT, message="x" * 300)
def test_progress_with_hostile_figures_and_text_never_kills_the_job(given_values, current, total,
                                                                    message):
    given_values.clear()
    given_values["progress"] = (current, total, message)
    effect = f"progress-{uuid.uuid4()}"
    job = enqueue("property.progress", effect)
    assert run_job(job.pk) == S.SUCCEEDED, Job.objects.get(pk=job.pk).last_error
    step = Step.objects.get(job=job, name="work")
    stored = (step.progress_current, step.progress_total, step.progress_message)
    rule = progress_rule(current, total)
    if rule is None:
        assert "refused" not in given_values, given_values.get("refused")
        assert stored == (current, total, storable_text(message, 255))
    else:
        refused = given_values["refused"]
        assert isinstance(refused, InvalidProgress) and rule in str(refused)
        assert stored == (None, None, "")  # nothing written
    assert Effect.objects.filter(key=effect).exists()


keys = st.one_of(
    hs.nasty_text,
    st.text(hs.nasty_chars, min_size=250, max_size=260),
    st.text(min_size=250, max_size=260),
    st.sampled_from([None, 42, b"key", ["key"], 1.5]),
)


def key_is_storable(key) -> bool:
    return (isinstance(key, str) and 1 <= len(key) <= 255 and "\x00" not in key
            and not any("\ud800" <= c <= "\udfff" for c in key))


@given(key=keys)
@example(key="\x00")
@example(key="invoice:\ud800")
@example(key="")
@example(key="k" * 256)
@example(key="k" * 255)
@example(key=None)
def test_once_with_a_hostile_key_records_it_exactly_or_refuses_naming_the_rule(given_values,
                                                                               key):
    given_values.clear()
    OperationKey.objects.all().delete()
    given_values["key"] = key
    effect = f"once-{uuid.uuid4()}"
    job = enqueue("property.once", effect)
    assert run_job(job.pk) == S.SUCCEEDED, Job.objects.get(pk=job.pk).last_error
    result = Job.objects.get(pk=job.pk).result
    if key_is_storable(key):
        assert "refused" not in given_values, given_values.get("refused")
        assert result is True
        assert list(OperationKey.objects.values_list("key", flat=True)) == [key]
    else:
        refused = given_values["refused"]
        assert isinstance(refused, InvalidOperationKey) and "key" in str(refused)
        assert result is None and not OperationKey.objects.exists()
    assert Effect.objects.filter(key=effect).exists()


def _error_class(name: str) -> type:
    module, _, qualname = name.rpartition(".")
    return getattr(importlib.import_module(module), qualname)


@given(value=hs.hostile_values)
@example(value=1e16)
@example(value=-0.0)
@example(value=1e308)
@example(value={"b": [1.5, -0.0], "a": 1})
@example(value={"\x00": None})
def test_a_hostile_result_reads_back_exactly_or_fails_the_attempt_naming_the_rule(given_values,
                                                                                  value):
    given_values["result"] = value
    job = enqueue("property.returns")
    status = run_job(job.pk)
    job.refresh_from_db()
    if status == S.SUCCEEDED:
        assert same(job.result, value), f"stored {job.result!r}"
    else:
        assert status == S.DEAD
        attempt = job.attempts.get()
        assert attempt.status == AttemptStatus.FAILED
        assert issubclass(_error_class(attempt.error_class), JobsError), attempt.error_class
        assert "the task's result" in attempt.error_message, attempt.error_message
