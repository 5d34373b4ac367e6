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
from tests.framework import (
    LOGGER,
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task,
    task_enqueued,
    task_finished,
    task_started,
)
from tests.framework import InvalidTask as InvalidTaskError
from tests.testapp.standard_tasks import (
    always_fails,
    as_enqueued,
    fails_once_asked,
    flaky,
    keywords,
    multiply,
    returns_a_function,
    stops_when_cancelled,
    takes_job_option_names,
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


def test_a_task_may_take_parameters_named_like_job_options():
    """Django's API keeps a task's arguments apart from its job's options (`.using()`),
    so the names enqueue() reserves for `@jobs.task` are free here."""
    result = takes_job_option_names.using(priority=4).enqueue(priority=9, queue="q",
                                                               run_after="noon")
    job = Job.objects.get(pk=result.id)
    assert (job.priority, job.queue) == (4, "default")
    assert run_job(result.id) == JobStatus.SUCCEEDED
    assert default_task_backend.get_result(result.id).return_value == {
        "priority": 9, "queue": "q", "run_after": "noon"}


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
def test_a_task_keyword_named_like_a_job_option_goes_to_the_task_not_the_job(option):
    result = keywords.enqueue(**{option: 3})
    assert result.kwargs == {option: 3}
    job = Job.objects.get(pk=result.id)
    # The job's options are the task's and the backend's, untouched by the argument.
    assert (job.queue, job.priority, job.max_attempts, job.idempotency_key,
            job.enqueued_by_id, job.run_after) == ("default", 0, 1, None, None, job.created_at)
    assert run_job(result.id) == JobStatus.SUCCEEDED
    assert default_task_backend.get_result(result.id).return_value == {option: 3}


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


# --- Standard semantics: one attempt unless retries are asked for ---------------------


def test_a_task_that_asks_for_no_retries_fails_at_once():
    result = fails_once_asked.enqueue()
    assert Job.objects.get(pk=result.id).max_attempts == 1
    assert run_job(result.id) == JobStatus.DEAD
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.finished_at is not None
    (error,) = result.errors
    assert error.exception_class is ValueError


def test_the_backends_max_attempts_option_asks_for_retries(settings):
    settings.TASKS = {**settings.TASKS, "default": {**settings.TASKS["default"],
                                                    "OPTIONS": {"MAX_ATTEMPTS": 3}}}
    result = fails_once_asked.enqueue()
    assert Job.objects.get(pk=result.id).max_attempts == 3
    assert run_job(result.id) == JobStatus.RETRYING
    result.refresh()
    assert result.status == TaskResultStatus.READY and result.finished_at is None
    # The task's own max_attempts wins over the backend's.
    assert Job.objects.get(pk=always_fails.enqueue("x").id).max_attempts == 2


def test_jobs_own_tasks_keep_their_default_attempts():
    from jobs import enqueue

    assert enqueue("tests.add", 1, b=2).max_attempts == 3  # JOBS['DEFAULT_MAX_ATTEMPTS']


@pytest.mark.parametrize(("options", "message"), [
    ({"MAX_ATTEMPTS": 0}, r"TASKS\['x'\]\['OPTIONS'\]\['MAX_ATTEMPTS'\]: max_attempts must be "
                          r"an int from 1 to 1000, got 0"),
    ({"MAX_ATTEMPTS": True}, r"\['MAX_ATTEMPTS'\]: max_attempts must be an int"),
    ({"MAX_ATTEMPTS": "3"}, r"\['MAX_ATTEMPTS'\]: max_attempts must be an int"),
    ({"MAX_ATTEMPTS": 1001}, r"\['MAX_ATTEMPTS'\]: max_attempts must be an int"),
    ({"MAX_ATTEMPT": 3}, r"TASKS\['x'\]\['OPTIONS'\] has unknown key\(s\) \['MAX_ATTEMPT'\]"),
    ([], r"TASKS\['x'\]\['OPTIONS'\] must be a dict"),
])
def test_the_backends_options_are_refused_naming_the_setting_and_the_rule(options, message):
    from jobs.backends import JobsBackend
    from jobs.exceptions import InvalidJobOption

    with pytest.raises(InvalidJobOption, match=message):
        JobsBackend("x", {"QUEUES": [], "OPTIONS": options})
    assert JobsBackend("x", {"OPTIONS": {"MAX_ATTEMPTS": 1000}}).max_attempts == 1000
    assert JobsBackend("x", {}).max_attempts == 1


def test_our_task_decorator_sets_our_options_where_djangos_takes_none(monkeypatch):
    """Django 6.0's @task takes no keyword argument of its own: jobs.backends.task hands
    it only the framework's and sets ours on the task it built."""
    import jobs.backends
    from tests.testapp import standard_tasks

    framework = jobs.backends.framework_task

    def strict(function=None, *, priority=0, queue_name="default", backend="default",
               takes_context=False):  # Django 6.0's signature
        return framework(function, priority=priority, queue_name=queue_name,
                         backend=backend, takes_context=takes_context)

    monkeypatch.setattr(jobs.backends, "framework_task", strict)
    declared = jobs.backends.task(queue_name="reports", priority=5, max_attempts=4,
                                  timeout=30)(standard_tasks.multiply.func)
    assert (declared.queue_name, declared.priority) == ("reports", 5)
    assert (declared.max_attempts, declared.timeout) == (4, 30)
    job = Job.objects.get(pk=declared.enqueue(2, 3).id)
    assert (job.queue, job.priority, job.max_attempts) == ("reports", 5, 4)
    bare = jobs.backends.task(standard_tasks.multiply.func)
    assert bare.max_attempts is None and bare == standard_tasks.multiply


# --- task_finished: once, on every path to a final status, with the error current -----


def _task_finished_records(caplog, result_id):
    return [r for r in caplog.records
            if r.name == LOGGER and f"id={result_id}" in r.getMessage()
            and "state=" in r.getMessage() and r.getMessage().endswith(("FAILED",
                                                                         "SUCCESSFUL"))]


def _claim_and_lose(result_id):
    """A worker claimed the job and died: its lease lapses and the reaper settles it."""
    from jobs.core import transitions
    from jobs.worker import reaper

    transitions.claim(result_id, worker_host="box", worker_pid=7, lease_seconds=30)
    Job.objects.filter(pk=result_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))
    reaper.sweep()


def _cancel(result_id):
    from jobs.core import transitions

    transitions.cancel([result_id])


def _fail_then_cancel(result_id):
    assert run_job(result_id) == JobStatus.RETRYING  # not final: no task_finished yet
    _cancel(result_id)


def _cancel_then_lose(result_id):
    from jobs.core import transitions
    from jobs.worker import reaper

    transitions.claim(result_id, worker_host="box", worker_pid=7, lease_seconds=30)
    _cancel(result_id)  # running: asked to stop
    Job.objects.filter(pk=result_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))
    reaper.sweep()


def _cancel_while_running(result_id):
    import threading

    from django.db import connection

    def cancel_then_close():
        try:
            _cancel(result_id)
        finally:
            connection.close()  # the timer thread's own connection: not left to the GC

    timer = threading.Timer(0.3, cancel_then_close)
    timer.start()
    assert run_job(result_id) == JobStatus.CANCELLED
    timer.join()


PATHS = {
    # name: (task, arguments, how it ends, status, the exception logged with it)
    "worker success": (multiply, (2, 3), lambda i: run_job(i), "SUCCESSFUL", None),
    "worker failure": (fails_once_asked, (), lambda i: run_job(i), "FAILED", ValueError),
    "reaper: worker lost": (fails_once_asked, (), _claim_and_lose, "FAILED", "WorkerLost"),
    "cancel while queued": (multiply, (2, 3), _cancel, "FAILED", "JobCancelled"),
    "cancel while retrying": (always_fails, ("x",), _fail_then_cancel, "FAILED",
                              "JobCancelled"),
    "reaper: lost with a cancel pending": (multiply, (2, 3), _cancel_then_lose, "FAILED",
                                           "WorkerLost"),
    "cancelled at a safe point": (stops_when_cancelled, (), _cancel_while_running, "FAILED",
                                  "JobCancelled"),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_task_finished_is_sent_once_on_every_path_with_its_traceback(path, caplog, heard,
                                                                     settings):
    import jobs.exceptions

    settings.JOBS = {**settings.JOBS, "LEASE_SECONDS": 0.6}  # a cancel is seen in 0.2 s
    declared, args, end, state, error = PATHS[path]
    result = declared.enqueue(*args)
    if path == "cancel while retrying":
        Job.objects.filter(pk=result.id).update(run_after=timezone.now())
    caplog.set_level("INFO", logger=LOGGER)
    end(result.id)
    finished = [r for n, r in heard if n == "task_finished"]
    assert len(finished) == 1 and finished[0].id == result.id
    assert finished[0].status == state
    (record,) = _task_finished_records(caplog, result.id)
    if error is None:
        assert record.levelname == "INFO" and not (record.exc_info and record.exc_info[0])
        return
    if isinstance(error, str):
        error = getattr(jobs.exceptions, error)
    assert record.levelname == "ERROR"
    assert record.exc_info and isinstance(record.exc_info[1], error), record.exc_info
    text = caplog.text
    assert "Traceback (most recent call last)" in text and "NoneType: None" not in text


def test_a_released_job_sends_no_task_finished(heard):
    from jobs.core import transitions
    from jobs.models import Attempt

    result = multiply.enqueue(2, 3)
    claimed = transitions.claim(result.id, worker_host="box", worker_pid=7, lease_seconds=30)
    transitions.release(claimed)
    assert [n for n, _ in heard if n == "task_finished"] == []
    attempt = Attempt.objects.get(job_id=result.id)
    assert attempt.error_class == "jobs.exceptions.WorkerShutdown"


def test_get_result_reads_the_job_and_its_attempts_in_one_query(django_assert_num_queries):
    result = always_fails.enqueue("gone")
    run_job(result.id)
    Job.objects.filter(pk=result.id).update(run_after=timezone.now())
    run_job(result.id)
    with django_assert_num_queries(1):
        fresh = default_task_backend.get_result(result.id)
    job = Job.objects.get(pk=result.id)
    first, last = job.attempts.order_by("number")
    assert fresh.status == TaskResultStatus.FAILED
    assert (fresh.started_at, fresh.last_attempted_at) == (first.started_at, last.started_at)
    assert fresh.worker_ids == [f"{a.worker_host}:{a.worker_pid}" for a in (first, last)]
    assert [e.exception_class for e in fresh.errors] == [LookupError, LookupError]
    assert [e.traceback for e in fresh.errors] == [first.traceback, last.traceback]
    unrun_id = multiply.enqueue(1, 1).id
    with django_assert_num_queries(1):
        unrun = default_task_backend.get_result(unrun_id)
    assert unrun.worker_ids == [] and unrun.errors == [] and unrun.started_at is None


def test_queues_lists_the_names_enqueue_accepts_not_what_a_cluster_serves(settings):
    """The decision (docs/operations.md, "Unserved queues"): the backend's QUEUES is the
    framework's allow-list, checked at enqueue, nothing more. Which queues clusters serve
    is a fact of the processes running (`qcluster --queues`, on other hosts, started
    later), which the enqueuing process cannot know: a listed queue nobody serves is
    accepted, and reported as unserved wherever operators look."""
    from jobs.ops import serving

    backend = settings.TASKS["default"]
    settings.TASKS = {**settings.TASKS, "default": {**backend, "QUEUES": ["default"]}}
    with pytest.raises(InvalidTaskError, match="Queue 'reports' is not valid for backend"):
        flaky.enqueue(1)  # declared with queue_name="reports"
    assert not Job.objects.exists()  # refused before anything is written

    settings.TASKS = {**settings.TASKS, "default": {**backend, "QUEUES": ["default", "reports"]}}
    result = flaky.enqueue(1)
    assert Job.objects.get(pk=result.id).queue == "reports"
    [unserved] = serving.unserved()  # no cluster serves it: said, not refused
    assert (unserved.name, unserved.due) == ("reports", 1)
