"""jobs.backends.JobsBackend in-process: enqueue through Django's API, validation at
decoration time, the signals, and what get_result refuses."""

import math
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import signals
from jobs.core.registry import ENQUEUE_OPTIONS
from jobs.exceptions import InvalidJobArguments
from jobs.models import Job, JobStatus
from jobs.worker.runner import run_job
from tests.framework import InvalidTask as InvalidTaskError
from tests.framework import (
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task,
    task_enqueued,
    task_finished,
    task_started,
)
from tests.testapp.standard_tasks import (
    always_fails,
    as_enqueued,
    flaky,
    keywords,
    multiply,
    returns_a_function,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    got = []

    def listen(signal, name):
        def receiver(sender, **kwargs):
            got.append((name, kwargs.get("task_result") or kwargs.get("job")))
        signal.connect(receiver, weak=False)
        return receiver

    pairs = [(task_enqueued, "task_enqueued"), (task_started, "task_started"),
             (task_finished, "task_finished"), (signals.job_enqueued, "job_enqueued"),
             (signals.job_started, "job_started"), (signals.job_finished, "job_finished")]
    receivers = [(s, listen(s, n)) for s, n in pairs]
    yield got
    for s, r in receivers:
        s.disconnect(r)


def test_enqueue_makes_a_job_with_the_tasks_queue_priority_and_options():
    result = flaky.using(priority=20).enqueue(succeed_on=1)
    job = Job.objects.get(pk=result.id)
    assert (job.task_name, job.queue, job.priority) == (flaky.module_path, "reports", 20)
    assert job.max_attempts == 3 and job.kwargs == {"succeed_on": 1}
    assert result.status == TaskResultStatus.READY and result.backend == "default"


def test_signals_ours_and_djangos_for_a_job_that_fails_then_dies(heard):
    result = always_fails.enqueue("gone")
    assert sorted(n for n, _ in heard) == ["job_enqueued", "task_enqueued"]
    heard.clear()
    assert run_job(result.id) == JobStatus.RETRYING
    # An attempt that will be retried has not finished the task.
    assert sorted(n for n, _ in heard) == ["job_finished", "job_started", "task_started"]
    heard.clear()
    Job.objects.filter(pk=result.id).update(run_after=Job.objects.get(pk=result.id).created_at)
    assert run_job(result.id) == JobStatus.DEAD
    assert sorted(n for n, _ in heard) == ["job_finished", "job_started", "task_finished",
                                           "task_started"]
    finished = dict(heard)["task_finished"]
    assert finished.status == TaskResultStatus.FAILED and len(finished.errors) == 2


def test_arguments_that_json_would_change_are_refused_before_any_row():
    with pytest.raises(InvalidJobArguments, match="args"):
        multiply.enqueue({1, 2}, 3)
    assert not Job.objects.exists()


def test_a_task_that_is_not_module_level_is_refused_at_decoration():
    with pytest.raises(InvalidTaskError, match="module level"):
        def outer():
            @task()
            def inner() -> None: ...
        outer()


def test_a_task_taking_a_name_enqueue_reserves_is_refused_at_decoration():
    with pytest.raises(InvalidTaskError, match="queue"):
        task()(_takes_queue)


def _takes_queue(queue: str) -> None: ...


@pytest.mark.parametrize("bad", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_get_result_of_an_unknown_id_raises_does_not_exist(bad):
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(bad)


def test_get_result_of_a_job_of_a_jobs_task_is_not_a_django_result():
    from jobs import enqueue

    job = enqueue("tests.add", 1, b=2)
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(str(job.pk))


def test_get_result_and_the_running_context_keep_what_using_set():
    later = timezone.now() + timedelta(seconds=0.2)
    result = as_enqueued.using(priority=7, queue_name="reports", run_after=later).enqueue()
    fresh = default_task_backend.get_result(result.id)
    assert fresh.task == result.task and fresh == result
    assert (fresh.task.priority, fresh.task.queue_name, fresh.task.run_after) == (
        7, "reports", later)
    time.sleep(0.3)  # due
    assert run_job(result.id) == JobStatus.SUCCEEDED
    result.refresh()
    assert result.return_value == {"priority": 7, "queue_name": "reports",
                                   "run_after": later.isoformat()}


def test_a_task_enqueued_without_run_after_reads_back_without_one():
    result = multiply.enqueue(2, 3)
    assert default_task_backend.get_result(result.id).task == multiply


def test_started_at_is_the_first_attempts_start():
    result = always_fails.enqueue("gone")
    run_job(result.id)
    Job.objects.filter(pk=result.id).update(run_after=timezone.now())
    run_job(result.id)
    result.refresh()
    first, last = Job.objects.get(pk=result.id).attempts.order_by("number")
    assert result.started_at == first.started_at < last.started_at == result.last_attempted_at


@pytest.mark.parametrize("option", sorted(ENQUEUE_OPTIONS))
def test_a_task_keyword_named_like_a_job_option_is_refused_not_taken(option):
    with pytest.raises(InvalidJobArguments, match=option):
        keywords.enqueue(**{option: 3})
    assert not Job.objects.exists()
    assert keywords.enqueue(other=3).kwargs == {"other": 3}


def test_get_result_of_a_job_whose_task_path_imports_nothing_raises_import_error():
    job = Job.objects.create(task_name="missing.func")
    with pytest.raises(ImportError):
        default_task_backend.get_result(str(job.pk))


def test_an_unstorable_return_value_fails_as_the_frameworks_type_error():
    result = returns_a_function.enqueue()
    assert run_job(result.id) == JobStatus.DEAD
    result.refresh()
    (error,) = result.errors
    assert error.exception_class is TypeError and "Unsupported type" in error.traceback


@pytest.mark.parametrize("priority", [101, -101, 3.1, math.nan, "1"])
def test_a_priority_is_refused_in_the_frameworks_words(priority):
    with pytest.raises(InvalidTaskError, match="priority must be a whole number between -100"):
        multiply.using(priority=priority)


def test_run_after_as_a_delay_is_refused_with_a_clear_error():
    with pytest.raises(InvalidTaskError, match="run_after must be a datetime or None"):
        multiply.using(run_after=timedelta(seconds=5))


def test_check_reports_the_jobs_app_missing(settings):
    assert list(default_task_backend.check()) == []
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "jobs"]
    (error,) = default_task_backend.check()
    assert error.id == "jobs.E015" and "INSTALLED_APPS" in error.hint
