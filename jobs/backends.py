"""A backend for Django's standard task API whose tasks run as this package's jobs.

    TASKS = {"default": {"BACKEND": "jobs.backends.JobsBackend", "QUEUES": ["default"],
                         "OPTIONS": {"MAX_ATTEMPTS": 1}}}

Code written against `django.tasks` (Django 6.0 and 6.1) or its backport
`django_tasks` (Django 5.2, `pip install truthful-jobs[tasks]`) runs with what
`@jobs.task` gets: every attempt recorded, leases and the reaper, dead letters,
the admin and the dashboard. It keeps the framework's semantics: a task runs
once, and a failure leaves the result FAILED at once, unless retries are asked
for, by the backend (`OPTIONS["MAX_ATTEMPTS"]`, an int from 1 to 1000, default 1,
checked when the backend is built) or by the task (`max_attempts`, then retried
with backoff). Our per-task options ride on Django's decorator, which hands
unknown keyword arguments to the backend's task class (the backport and Django
6.1); Django 6.0's decorator takes none, so this module has its own `task`, the
framework's decorator plus these options, on every version:

    @task(queue_name="reports", max_attempts=5, timeout=120, atomic=False)
    def build(report_id: int) -> dict: ...

A task is registered with this package's registry when Django creates it (at
import, so a worker that imports the module can run it), under its module
path. A job's options come from its task (the decorator, `.using()`) and the
backend's OPTIONS alone: a task's keyword arguments are its own, whatever their
names (`build.enqueue(priority=3)` passes `priority` to the task). Statuses map
as: queued, retrying -> READY; running -> RUNNING; succeeded -> SUCCESSFUL;
dead, cancelled -> FAILED. A result's task is the task as enqueued (what
`.using()` set), `started_at` its first attempt's start, each error's
`exception_class_path` an importable path (the engine's own errors are in
jobs.exceptions: WorkerLost, WorkerShutdown, JobCancelled...). `task_started` is
sent when an attempt starts, `task_finished` when the job reaches a final
status, whichever way (a worker, the reaper, an operator's cancel; not after an
attempt that will be retried), with the error that ended it as the current
exception, so the framework's handler logs its traceback.

tests/conformance/ runs the framework's own suites against this backend; what it
does differently on purpose, and what it still gets wrong, is listed in
tests/conformance/expectations.py.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.apps import apps
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ValidationError
from django.db.models.expressions import RawSQL
from django.dispatch import receiver
from django.utils.module_loading import import_string

from jobs import dialect, signals
from jobs.core import registry
from jobs.core.context import current_job
from jobs.core.enqueue import enqueue_call
from jobs.core.queues import check_name, shown
from jobs.core.registry import check_max_attempts, check_priority
from jobs.core.retry import Backoff
from jobs.core.transitions.errors import importable_path as _class_path
from jobs.exceptions import InvalidJobOption, TaskRegistrationError
from jobs.models import Attempt, AttemptStatus, Job, JobStatus

try:  # Django 6.0 and later: the framework itself
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
    from django.tasks.base import task as framework_task
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
except ImportError:  # Django 5.2: the django-tasks backport, where InvalidTask is InvalidTaskError
    from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
    from django_tasks.base import task as framework_task
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


# The backend's OPTIONS, each with its default.
BACKEND_OPTIONS: dict[str, Any] = {
    # Attempts a job of this backend's tasks gets unless its task says otherwise: one,
    # as the framework means it (a failure leaves the result FAILED at once).
    "MAX_ATTEMPTS": 1,
}


@dataclass(frozen=True, kw_only=True)
class JobTask(Task):
    """Django's Task plus this package's options; see the module docstring."""

    max_attempts: int | None = None
    backoff: Backoff | None = None
    timeout: int | None = None
    atomic: bool | None = None
    steps: tuple[str, ...] = ()


# The options JobTask adds to Django's Task, which `task` below takes on every version.
TASK_OPTIONS = ("max_attempts", "backoff", "timeout", "atomic", "steps")


def task(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """The framework's `@task`, with this backend's options on every Django version.

    Django 6.0's decorator takes no keyword argument of its own, so
    `@task(max_attempts=5)` from `django.tasks` fails there; this one hands the
    framework only its own arguments (priority, queue_name, backend, takes_context)
    and sets ours on the task it built (validated and registered again with them).
    """
    ours = {name: options.pop(name) for name in TASK_OPTIONS if name in options}

    def wrapper(f: Callable[..., Any]) -> Task:
        built = framework_task(**options)(f)
        return replace(built, **ours) if ours else built

    return wrapper(function) if function is not None else wrapper


class JobsBackend(BaseTaskBackend):
    task_class = JobTask
    supports_defer = True
    supports_priority = True
    supports_get_result = True
    supports_async_task = False  # a coroutine task would need an event loop per worker

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        """Refuse OPTIONS this backend would misread, naming the setting and the rule:
        an unknown key (a misspelt MAX_ATTEMPTS would silently give one attempt) or a
        value out of bounds."""
        super().__init__(alias, params)
        where = f"TASKS[{alias!r}]['OPTIONS']"
        if not isinstance(self.options, dict):
            raise InvalidJobOption(f"{where} must be a dict, got {shown(self.options)}")
        unknown = sorted(map(str, set(self.options) - set(BACKEND_OPTIONS)))
        if unknown:
            raise InvalidJobOption(f"{where} has unknown key(s) {unknown}; "
                                   f"jobs.backends.JobsBackend takes {sorted(BACKEND_OPTIONS)}")
        settings = {**BACKEND_OPTIONS, **self.options}
        try:
            self.max_attempts: int = check_max_attempts(settings["MAX_ATTEMPTS"])
        except InvalidJobOption as exc:
            raise InvalidJobOption(f"{where}['MAX_ATTEMPTS']: {exc}") from None

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
        _register(task, self.max_attempts)

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
        """A job for the call. The task's arguments go to `enqueue_call` as a list and a
        dict, apart from the job's options (the task's and this backend's), so a
        keyword argument named like an option (`priority`, `queue`) is the task's."""
        self.validate_task(task)
        max_attempts = getattr(task, "max_attempts", None)
        job = enqueue_call(registry.get_task(task.module_path), args, kwargs,
                           queue=task.queue_name, priority=task.priority,
                           run_after=task.run_after,
                           max_attempts=self.max_attempts if max_attempts is None
                           else max_attempts)
        result = self._result(task, job, [])
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The job's result, its task as it was enqueued (queue, priority, run_after).

        One query on PostgreSQL and SQLite: the job's row with its attempts as JSON.
        TaskResultDoesNotExist for an id that is no job, or a job of a `@jobs.task`
        task (not a result of this backend); ImportError for a job whose task path
        imports nothing here (moved or removed since it was enqueued).
        """
        try:
            job, attempts = _job_and_attempts(UUID(str(result_id)))
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
        return self._result(_as_enqueued(task, job, self.alias), job, attempts)

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


# What a result reads of each attempt.
ATTEMPT_FIELDS = ("number", "status", "started_at", "error_class", "traceback", "worker_host",
                  "worker_pid")


def _job_and_attempts(pk: UUID) -> tuple[Job, list[Attempt]]:
    """The job and its attempts in number order: in one query where the database can
    aggregate them as JSON beside the job's row, else two. Job.DoesNotExist if none."""
    rows = dialect.current().attempts_json_sql(ATTEMPT_FIELDS)
    if rows is None:
        job = Job.objects.get(pk=pk)
        return job, list(job.attempts.order_by("number"))
    job = Job.objects.annotate(attempt_rows=RawSQL(rows, ())).get(pk=pk)
    found = job.attempt_rows  # type: ignore[attr-defined]
    if isinstance(found, (str, bytes)):  # SQLite's json text; psycopg parses json itself
        found = json.loads(found)
    attempts = []
    for row in found or []:
        row["started_at"] = _timestamp(row["started_at"])
        attempts.append(Attempt(job_id=job.pk, **row))
    return job, attempts


def _timestamp(value: Any) -> datetime | None:
    """An attempt's start as the JSON gave it: ISO text, UTC where it says no zone."""
    if value is None or isinstance(value, datetime):
        return value
    found = datetime.fromisoformat(value)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


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


def _register(task: Task, max_attempts: int) -> None:
    """Enter the task in this package's registry, under its module path, with the
    backend's `max_attempts` unless the task has its own (the default for jobs of it
    that do not come through the backend, such as a schedule's)."""
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
    options = {name: getattr(task, name, None) for name in ("backoff", "timeout", "atomic")}
    own = getattr(task, "max_attempts", None)
    try:
        # No reserved parameter names: the backend never takes a task's arguments for
        # job options (JobsBackend.enqueue).
        registry.declare(run, name=task.module_path, queue=task.queue_name,
                         steps=getattr(task, "steps", ()), reserved=frozenset(),
                         max_attempts=max_attempts if own is None else own, **options)
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
def _finished(job: Job, status: JobStatus, error: BaseException | None = None,
              **_: Any) -> None:
    """`task_finished` once the job is final. The framework's handler logs a failure
    with the current exception's traceback (sys.exc_info()): a worker sends from the
    `except` that caught the error, so it is current; where nothing is (the reaper's
    lost worker, an operator's cancel), the error that ended the job is raised here
    and the signal sent while it is being handled."""
    if not JobStatus(status).is_terminal:
        return
    if error is None or sys.exc_info()[1] is not None:
        _send(task_finished, job)
        return
    traceback = error.__traceback__
    try:
        raise error
    except BaseException:  # noqa: BLE001 - the error itself, made current for the handler
        _send(task_finished, job)
    finally:
        error.__traceback__ = traceback  # as it was: raising it here added this frame
