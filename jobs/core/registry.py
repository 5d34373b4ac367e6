"""The task registry: which functions may run as jobs, and with what defaults.

Only a registered task can run: a worker looks every job's task up here by
name, and `enqueue()` refuses a name that is not here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs import conf
from jobs.core.retry import Backoff
from jobs.core.serialization import check_text
from jobs.exceptions import (
    InvalidJobOption,
    StepError,
    TaskRegistrationError,
    UnknownTaskError,
    UnstorableValue,
)

# Keyword names enqueue() keeps for itself; a task may not take them.
ENQUEUE_OPTIONS = frozenset(
    {"queue", "priority", "run_after", "max_attempts", "idempotency_key", "enqueued_by"}
)
PRIORITY_RANGE = (-1000, 1000)
MAX_QUEUE_NAME = 64
MAX_TASK_NAME = 200
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
    # Planned step names, shown as pending before they run (see jobs.worker.steps).
    steps: tuple[str, ...] = ()
    signature: inspect.Signature = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", inspect.signature(self.func))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, in-process (tests, shells)."""
        return self.func(*args, **kwargs)

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
        if not task_name or len(task_name) > MAX_TASK_NAME or "\x00" in task_name:
            raise TaskRegistrationError(
                f"a task name is 1 to {MAX_TASK_NAME} characters without NUL, got {task_name!r}"
            )
        clash = ENQUEUE_OPTIONS & set(inspect.signature(fn).parameters)
        if clash:
            raise TaskRegistrationError(
                f"Task {task_name!r} takes parameter(s) {sorted(clash)} that enqueue() "
                "reserves for its own options; rename them."
            )
        if queue is not None:
            check_queue(queue)
        check_priority(priority)
        if max_attempts is not None:
            check_max_attempts(max_attempts)
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


def is_registered(t: Task) -> bool:
    """True if `t` is the very task registered under its name (not a stale copy)."""
    return _registry.get(t.name) is t



def validate_plan(names: list[str] | tuple[str, ...]) -> list[str]:
    """Declared step names: non-empty, at most 200 characters, unique within the job."""
    names = list(names)
    if not all(isinstance(n, str) and n and len(n) <= 200 for n in names):
        raise StepError(f"step names must be non-empty strings of at most 200 characters: {names}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StepError(f"step names must be unique within a job; repeated: {duplicates}")
    return names


def check_queue(queue: Any) -> str:
    if not isinstance(queue, str) or not queue.strip() or len(queue) > MAX_QUEUE_NAME:
        raise InvalidJobOption(
            f"queue must be a non-empty string of at most {MAX_QUEUE_NAME} characters, "
            f"got {queue!r}"
        )
    try:
        return check_text(queue, "queue")
    except UnstorableValue as exc:
        raise InvalidJobOption(str(exc)) from None


def check_priority(priority: Any) -> int:
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise InvalidJobOption(f"priority must be an int from {low} to {high}, got {priority!r}")
    return priority


def check_max_attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidJobOption(f"max_attempts must be an int from 1 to 1000, got {value!r}")
    return value
