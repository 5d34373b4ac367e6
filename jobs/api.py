"""The public face: declare tasks with `@task`, start them with `enqueue()`.

Everything that can be wrong about a job is checked here, in the caller's
process, before a row is written: a worker should never be the first to learn
that a task name is misspelt or an argument cannot be stored.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import conf
from jobs.exceptions import (
    InvalidJobArguments,
    InvalidJobOption,
    TaskRegistrationError,
    UnknownTaskError,
)
from jobs.models import Job
from jobs.retry import Backoff
from jobs.serialization import stored_json
from jobs.steps import StepError, plan, validate_plan

# Keyword names enqueue() keeps for itself; a task may not take them.
ENQUEUE_OPTIONS = frozenset(
    {"queue", "priority", "run_after", "max_attempts", "idempotency_key", "enqueued_by"}
)
PRIORITY_RANGE = (-1000, 1000)
MAX_QUEUE_NAME = 64
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Task:
    """A registered task: the function plus the defaults its jobs start with.

    Frozen, like django.tasks' Task, so a definition cannot drift at run time.
    """

    func: Callable[..., Any]
    name: str
    queue: str | None = None
    priority: int = 0
    max_attempts: int | None = None
    backoff: Backoff | None = None
    # Seconds an attempt may run; None means the global default.
    timeout: int | None = None
    # Run the task in the same transaction as its success marker, so its own
    # writes and "succeeded" commit together or not at all.
    atomic: bool = True
    # Planned step names, shown as pending before they run (see jobs.steps).
    steps: tuple[str, ...] = ()
    signature: inspect.Signature = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", inspect.signature(self.func))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, in-process (tests, shells)."""
        return self.func(*args, **kwargs)

    def enqueue(self, *args: Any, **kwargs: Any) -> Job:
        return enqueue(self, *args, **kwargs)

    def effective_backoff(self) -> Backoff:
        return self.backoff or Backoff.from_settings()

    def effective_max_attempts(self) -> int:
        return self.max_attempts or conf.get().default_max_attempts


_registry: dict[str, Task] = {}


def task(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    queue: str | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    backoff: Backoff | None = None,
    timeout: int | None = None,
    atomic: bool | None = None,
    steps: list[str] | tuple[str, ...] = (),
) -> Any:
    """Register a function as a task, under `name` or its dotted path.

    Give an explicit `name` to anything that may be renamed or moved: queued
    jobs refer to tasks by name, and a rename would strand them. A task with
    `steps` is not atomic as a whole: each step commits with its checkpoint.
    """

    def register(fn: Callable[..., Any]) -> Task:
        task_name = name or f"{fn.__module__}.{fn.__qualname__}"
        clash = ENQUEUE_OPTIONS & set(inspect.signature(fn).parameters)
        if clash:
            raise TaskRegistrationError(
                f"Task {task_name!r} takes parameter(s) {sorted(clash)} that enqueue() "
                "reserves for its own options; rename them."
            )
        if queue is not None:
            _check_queue(queue)
        _check_priority(priority)
        if max_attempts is not None:
            _check_max_attempts(max_attempts)
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            raise TaskRegistrationError(f"timeout must be a positive int, got {timeout!r}")
        try:
            planned = tuple(validate_plan(steps))
        except StepError as exc:
            raise TaskRegistrationError(f"Task {task_name!r}: {exc}") from None
        if planned and atomic:
            raise TaskRegistrationError(
                f"Task {task_name!r} declares steps, which commit one by one; it cannot "
                "also be atomic as a whole (drop atomic=True)"
            )
        t = Task(
            func=fn,
            name=task_name,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
            backoff=backoff,
            timeout=timeout,
            atomic=not planned if atomic is None else atomic,
            steps=planned,
        )
        existing = _registry.get(task_name)
        if existing is not None and _qualified(existing.func) != _qualified(fn):
            raise TaskRegistrationError(
                f"Task name {task_name!r} is already registered by {_qualified(existing.func)}"
            )
        _registry[task_name] = t
        return t

    return register(func) if func is not None else register


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def get_task(name: str) -> Task:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownTaskError(
            f"No task is registered as {name!r}. Registered: {sorted(_registry) or 'none'}. "
            "Is its module imported (an app's tasks.py, or JOBS['TASK_MODULES'])?"
        ) from None


def registered_tasks() -> dict[str, Task]:
    return dict(_registry)


def enqueue(
    task_or_name: Task | str,
    /,
    *args: Any,
    queue: str | None = None,
    priority: int | None = None,
    run_after: datetime | timedelta | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    enqueued_by: Any = None,
    **kwargs: Any,
) -> Job:
    """Create a job and return it at once; a cluster runs it after commit.

    Inside a transaction the job is part of it: roll back and the job never
    existed, so it can never run. With an `idempotency_key`, a second call
    returns the first job instead of creating another.
    """
    t = task_or_name if isinstance(task_or_name, Task) else get_task(task_or_name)
    if isinstance(task_or_name, Task) and _registry.get(t.name) is not t:
        raise UnknownTaskError(f"Task {t.name!r} is not the registered task of that name")

    try:
        t.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidJobArguments(f"Arguments do not fit task {t.name!r}: {exc}") from None
    json_args = [_json_value(a, f"args[{i}]", t.name) for i, a in enumerate(args)]
    json_kwargs = {k: _json_value(v, f"kwargs[{k!r}]", t.name) for k, v in kwargs.items()}

    now = timezone.now()
    fields: dict[str, Any] = {
        "task_name": t.name,
        "args": json_args,
        "kwargs": json_kwargs,
        "queue": _check_queue(queue if queue is not None else t.queue or conf.get().default_queue),
        "priority": _check_priority(priority if priority is not None else t.priority),
        "max_attempts": _check_max_attempts(
            max_attempts if max_attempts is not None else t.effective_max_attempts()
        ),
        "run_after": _check_run_after(run_after, now),
        "created_at": now,
        "enqueued_by": enqueued_by if getattr(enqueued_by, "pk", None) else None,
    }
    if idempotency_key is None:
        return _create(t, fields)

    key = _check_idempotency_key(idempotency_key)
    existing = Job.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    try:
        # A savepoint, so losing the race does not poison the caller's transaction.
        with transaction.atomic():
            return _create(t, {**fields, "idempotency_key": key})
    except IntegrityError:
        existing = Job.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return existing


def _create(t: Task, fields: dict[str, Any]) -> Job:
    if not t.steps:
        return Job.objects.create(**fields)
    with transaction.atomic():
        job = Job.objects.create(**fields)
        plan(job, list(t.steps))
    return job


def _json_value(value: Any, where: str, task_name: str) -> Any:
    """Return the value as it will come back out of the database, or refuse it.

    The round trip is strict (no default= hook, no NaN): a task must receive
    what it was given, not a lossy stand-in such as a stringified datetime.
    """
    try:
        return stored_json(value, f"{where} of task {task_name!r}")
    except TypeError as exc:
        raise InvalidJobArguments(
            f"{exc}. Pass plain data (str, int, float, bool, None, list, dict), "
            "e.g. an id instead of a model instance."
        ) from None


def _check_queue(queue: Any) -> str:
    if not isinstance(queue, str) or not queue.strip() or len(queue) > MAX_QUEUE_NAME:
        raise InvalidJobOption(
            f"queue must be a non-empty string of at most {MAX_QUEUE_NAME} characters, "
            f"got {queue!r}"
        )
    return queue


def _check_priority(priority: Any) -> int:
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise InvalidJobOption(f"priority must be an int from {low} to {high}, got {priority!r}")
    return priority


def _check_max_attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidJobOption(f"max_attempts must be an int from 1 to 1000, got {value!r}")
    return value


def _check_run_after(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise InvalidJobOption(f"run_after must not be a negative delay, got {value!r}")
        return now + value
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise InvalidJobOption(
                f"run_after must be timezone-aware, got naive {value!r} "
                "(use django.utils.timezone.now() or attach a tzinfo)"
            )
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        raise InvalidJobOption(
            f"run_after takes a datetime or a timedelta, got the number {value!r} "
            "(use timedelta(seconds=...))"
        )
    raise InvalidJobOption(f"run_after takes a datetime or a timedelta, got {value!r}")


def _check_idempotency_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidJobOption(
            f"idempotency_key must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY} "
            f"characters, got {key!r}"
        )
    return key
