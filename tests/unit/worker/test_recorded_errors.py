"""Every error class the engine records imports (issue 23): an attempt's or a step's
`error_class` is a builtin's bare name or a dotted path that `import_string` finds,
so Django's TaskResult.errors (exception_class) and anyone reading the row can turn
it back into the class. The engine's own errors live in jobs.exceptions."""

import builtins
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string

from jobs import enqueue
from jobs.core import transitions
from jobs.models import Attempt, DeadLetter, Job, JobStatus, Step
from jobs.worker import reaper
from jobs.worker.runner import run_job

pytestmark = pytest.mark.django_db


def imported(error_class: str) -> type[BaseException]:
    """The class a recorded error_class names, by the rule written out: a bare name is a
    builtin's, anything else a dotted path."""
    if "." not in error_class:
        found = getattr(builtins, error_class)
    else:
        found = import_string(error_class)
    assert isinstance(found, type) and issubclass(found, BaseException), error_class
    assert found.__qualname__ == error_class.rsplit(".", 1)[-1]
    return found


def claimed(job):
    return transitions.claim(job.pk, worker_host="box", worker_pid=7, lease_seconds=30)


def fails():
    assert run_job(enqueue("tests.fail_always", "boom").pk) == JobStatus.RETRYING


def times_out():
    assert run_job(enqueue("tests.times_out", 3.0).pk) == JobStatus.RETRYING


def step_times_out():
    assert run_job(enqueue("tests.step_limits").pk) == JobStatus.RETRYING


def is_lost():
    job = enqueue("tests.add", 1, 2, max_attempts=1)
    claimed(job)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert reaper.sweep().dead == [job.pk]


def is_released():
    transitions.release(claimed(enqueue("tests.add", 1, 2)))


def is_cancelled_running():
    transitions.stop_cancelled(claimed(enqueue("tests.add", 1, 2)))


def has_no_task():
    job = enqueue("tests.add", 1, 2, max_attempts=1)
    Job.objects.filter(pk=job.pk).update(task_name="tests.gone")
    assert run_job(job.pk) == JobStatus.DEAD


def is_permanent():
    assert run_job(enqueue("tests.fail_permanent", "no").pk) == JobStatus.DEAD


def finds_its_key_busy():
    job = enqueue("tests.raises", "jobs.exceptions.OperationKeyBusy")
    assert run_job(job.pk) == JobStatus.DEAD


# What each path records, as the attempt (and the step, where one failed) says.
PATHS = {
    fails: "RuntimeError",
    times_out: "TimeoutError",
    step_times_out: "jobs.exceptions.StepTimeout",
    is_lost: "jobs.exceptions.WorkerLost",
    is_released: "jobs.exceptions.WorkerShutdown",
    is_cancelled_running: "jobs.exceptions.JobCancelled",
    has_no_task: "jobs.exceptions.UnknownTaskError",
    is_permanent: "jobs.exceptions.PermanentError",
    finds_its_key_busy: "jobs.exceptions.OperationKeyBusy",
}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__)
def test_every_error_class_the_engine_records_imports(path):
    path()
    recorded = {c for c in [*Attempt.objects.values_list("error_class", flat=True),
                            *Step.objects.values_list("error_class", flat=True),
                            *(d.error_class for d in DeadLetter.objects.all())] if c}
    assert PATHS[path] in recorded, recorded
    for error_class in recorded:
        imported(error_class)


@pytest.mark.parametrize("error_class", ["WorkerLost", "WorkerShutdown", "Cancelled"])
def test_what_older_releases_recorded_imports_through_the_backend(error_class):
    """Before the engine's errors moved to jobs.exceptions they were stored by a bare
    name that no builtin has; the backend still gives an importable path for them."""
    from jobs.backends import _class_path

    assert imported(_class_path(error_class)).__module__ == "jobs.exceptions"
    assert _class_path("ValueError") == "builtins.ValueError"
    assert _class_path("tests.x.Error") == "tests.x.Error"
