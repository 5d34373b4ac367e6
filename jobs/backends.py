"""A backend for Django's standard task API whose tasks run as this package's jobs.

    TASKS = {"default": {"BACKEND": "jobs.backends.JobsBackend", "QUEUES": ["default"]}}

Code written against `django.tasks` (Django 6.0 and 6.1) or its backport
`django_tasks` (Django 5.2, `pip install truthful-jobs[tasks]`) gets what
`@jobs.task` gets: every attempt recorded, leases and the reaper, retries with
backoff, dead letters, idempotent scheduling, the admin and the dashboard. Our
per-task options ride on Django's decorator, which hands unknown keyword
arguments to the backend's task class (the backport and Django 6.1; Django 6.0's
decorator takes none):

    @task(queue_name="reports", max_attempts=5, timeout=120, atomic=False)
    def build(report_id: int) -> dict: ...

A task is registered with this package's registry when Django creates it (at
import, so a worker that imports the module can run it), under its module
path. A job's options come from its task alone (the decorator, `.using()`): a
keyword argument of the task named like one of `jobs.enqueue()`'s options is
refused, never taken as the option. Statuses map as: queued, retrying -> READY;
running -> RUNNING; succeeded -> SUCCESSFUL; dead, cancelled -> FAILED. A
result's task is the task as enqueued (what `.using()` set), `started_at` its
first attempt's start. `task_started` is sent when an attempt starts,
`task_finished` when the job reaches a final status (not after an attempt that
will be retried).

tests/conformance/ runs the framework's own suites against this backend; what it
does differently on purpose, and what it still gets wrong, is listed in
tests/conformance/expectations.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from django.apps import apps
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.utils.module_loading import import_string

from jobs import signals
from jobs.core import registry
from jobs.core.context import current_job
from jobs.core.enqueue import enqueue
from jobs.core.queues import check_name, shown
from jobs.core.registry import ENQUEUE_OPTIONS, check_priority
from jobs.core.retry import Backoff
from jobs.exceptions import InvalidJobArguments, InvalidJobOption, TaskRegistrationError
from jobs.models import Attempt, AttemptStatus, Job, JobStatus

try:  # Django 6.0 and later: the framework itself
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
except ImportError:  # Django 5.2: the django-tasks backport, where InvalidTask is InvalidTaskError
    from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

STATUSES = {
    JobStatus.QUEUED: TaskResultStatus.READY,
    JobStatus.RETRYING: TaskResultStatus.READY,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    JobStatus.DEAD: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}
# Attempts that ended in an error, for TaskResult.errors.
FAILED_ATTEMPTS = {AttemptStatus.FAILED, AttemptStatus.TIMED_OUT, AttemptStatus.LOST}


@dataclass(frozen=True, kw_only=True)
class JobTask(Task):
    """Django's Task plus this package's options; see the module docstring."""

    max_attempts: int | None = None
    backoff: Backoff | None = None
    timeout: int | None = None
    atomic: bool | None = None
    steps: tuple[str, ...] = ()


class JobsBackend(BaseTaskBackend):
    task_class = JobTask
    supports_defer = True
    supports_priority = True
    supports_get_result = True
    supports_async_task = False  # a coroutine task would need an event loop per worker

    def validate_task(self, task: Task) -> None:
        """Our checks, then Django's, then registration; every refusal comes out as
        Django's InvalidTask naming the rule.

        Ours come first: Django's own calls int() on the priority and utcoffset() on
        run_after, which escape as ValueError or AttributeError for a NaN or a string;
        and its queue check only asks that the name be in QUEUES (an empty QUEUES
        allows any), where ours is the one queue-name rule.
        """
        try:
            check_priority(task.priority)
        except InvalidJobOption:
            # The framework's rule in the framework's words (its range is the narrower),
            # before its own check can escape as a ValueError (int() of a NaN).
            raise InvalidTask(
                f"priority must be a whole number between {TASK_MIN_PRIORITY} and "
                f"{TASK_MAX_PRIORITY}. Got {shown(task.priority)}.") from None
        try:
            check_name(task.queue_name, "queue_name")
            if task.run_after is not None and not isinstance(task.run_after, datetime):
                raise InvalidJobOption(
                    f"run_after must be a datetime or None, got {shown(task.run_after)}")
        except InvalidJobOption as exc:
            raise InvalidTask(str(exc)) from None
        super().validate_task(task)
        _register(task)

    def check(self, **kwargs: Any) -> Iterable[CheckMessage]:
        """The framework's checks, and that the jobs app is installed: without it there
        is no Job table to enqueue into and no worker to run what is enqueued."""
        yield from super().check(**kwargs)
        if not apps.is_installed("jobs"):
            yield Error(f"Task backend {self.alias!r} (jobs.backends.JobsBackend) needs the "
                        "jobs app, which is not installed.",
                        hint="Add 'jobs' to INSTALLED_APPS (before 'django_q').",
                        id="jobs.E015")

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        # A task's own keyword arguments are its arguments, never this package's job
        # options: those come from the task (@task, .using()) alone. enqueue() takes
        # them by keyword, so a task argument of the same name cannot be passed on.
        taken = sorted(ENQUEUE_OPTIONS & set(kwargs))
        if taken:
            raise InvalidJobArguments(
                f"Task {task.module_path!r} was given the keyword argument(s) {taken}, "
                "which name job options of this backend and cannot be passed to a task "
                "through it; rename them (priority, queue and run_after are set with "
                ".using())")
        job = enqueue(registry.get_task(task.module_path), *args, queue=task.queue_name,
                      priority=task.priority, run_after=task.run_after, **kwargs)
        result = self._result(task, job, [])
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The job's result, its task as it was enqueued (queue, priority, run_after).

        TaskResultDoesNotExist for an id that is no job, or a job of a `@jobs.task`
        task (not a result of this backend); ImportError for a job whose task path
        imports nothing here (moved or removed since it was enqueued).
        """
        try:
            job = Job.objects.get(pk=UUID(str(result_id)))
        except (ValueError, ValidationError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        try:
            task = import_string(job.task_name)
        except ImportError:
            if job.task_name in registry.registered_tasks():
                raise TaskResultDoesNotExist(result_id) from None
            raise
        if not isinstance(task, Task):
            raise TaskResultDoesNotExist(result_id)
        return self._result(_as_enqueued(task, job, self.alias), job,
                            list(job.attempts.order_by("number")))

    def _result(self, task: Task, job: Job, attempts: list[Attempt]) -> TaskResult:
        result = TaskResult(
            task=task,
            id=str(job.pk),
            status=STATUSES[JobStatus(job.status)],
            enqueued_at=job.created_at,
            # The first attempt's start, as the framework's; the job's own started_at
            # is its latest attempt's.
            started_at=attempts[0].started_at if attempts else job.started_at,
            finished_at=job.finished_at,
            last_attempted_at=attempts[-1].started_at if attempts else None,
            args=job.args,
            kwargs=job.kwargs,
            backend=self.alias,
            errors=[TaskError(exception_class_path=_class_path(a.error_class),
                              traceback=a.traceback)
                    for a in attempts if a.status in FAILED_ATTEMPTS],
            worker_ids=[f"{a.worker_host}:{a.worker_pid}" for a in attempts],
        )
        object.__setattr__(result, "_return_value", job.result)
        return result


def _as_enqueued(task: Task, job: Job, alias: str) -> Task:
    """`task` with what `.using()` changed for this job, read back from the job.

    run_after is the time the job waits for now: as enqueued until a retry, a
    requeue or a release moves it; None when the job was due at once (enqueue
    stores its own time then, as it does for a time already past).
    """
    changes = {
        "priority": job.priority,
        "queue_name": job.queue,
        "run_after": None if job.run_after == job.created_at else job.run_after,
        "backend": alias,
    }
    if all(getattr(task, name) == value for name, value in changes.items()):
        return task
    # Built field by field rather than with dataclasses.replace(), which would
    # validate (and register) it again: this is the task as it was validated at
    # enqueue, which a later change of TASKS must not make unreadable.
    found = object.__new__(type(task))
    for f in fields(task):
        object.__setattr__(found, f.name, changes.get(f.name, getattr(task, f.name)))
    return found


def _class_path(error_class: str) -> str:
    """An importable path: the attempt stores builtins by their bare name."""
    return error_class if "." in error_class else f"builtins.{error_class}"


def _register(task: Task) -> None:
    """Enter the task in this package's registry, under its module path."""
    func = task.func
    takes_context = task.takes_context

    def run(*args: Any, **kwargs: Any) -> Any:
        if takes_context:
            running = current_job()
            backend = task_backends[task.backend]
            context = TaskContext(task_result=backend.get_result(str(running.job_id)))
            value = func(context, *args, **kwargs)
        else:
            value = func(*args, **kwargs)
        # What the framework cannot store fails as the framework's TypeError; what it
        # would store changed (a tuple as a list) is this package's to refuse or keep.
        normalize_json(value)
        return value

    run.__module__, run.__qualname__ = func.__module__, func.__qualname__
    signature = inspect.signature(func)
    if takes_context:  # the context is the backend's to give, not the caller's
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    run.__signature__ = signature  # type: ignore[attr-defined]
    options = {name: getattr(task, name, None)
               for name in ("max_attempts", "backoff", "timeout", "atomic")}
    try:
        registry.task(run, name=task.module_path, queue=task.queue_name,
                      steps=getattr(task, "steps", ()), **options)
    except (TaskRegistrationError, InvalidJobOption) as exc:
        raise InvalidTask(str(exc)) from None


def _django_task(name: str) -> Task | None:
    """The Django task a job runs, if it runs one."""
    try:
        found = import_string(name)
    except ImportError:
        return None
    return found if isinstance(found, Task) else None


def _send(signal: Any, job: Job) -> None:
    task = _django_task(job.task_name)
    if task is None or not isinstance(task.get_backend(), JobsBackend):
        return
    backend = task.get_backend()
    signal.send(sender=type(backend), task_result=backend.get_result(str(job.pk)))


@receiver(signals.job_started)
def _started(job: Job, **_: Any) -> None:
    _send(task_started, job)


@receiver(signals.job_finished)
def _finished(job: Job, status: JobStatus, **_: Any) -> None:
    if JobStatus(status).is_terminal:
        _send(task_finished, job)
