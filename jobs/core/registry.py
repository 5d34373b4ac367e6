"""The task registry: which functions may run as jobs, and with what defaults.

Only a registered task can run: a worker looks every job's task up here by
name, and `enqueue()` refuses a name that is not here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs import conf
from jobs.core.queues import check_name as check_queue  # the one queue-name rule
from jobs.core.queues import shown
from jobs.core.retry import Backoff
from jobs.core.serialization import check_text
from jobs.exceptions import (
    InvalidJobOption,
    InvalidTaskName,
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
MAX_TASK_NAME = 200  # Job.task_name's length
MAX_IDEMPOTENCY_KEY = 255
MAX_STEP_NAME = 200  # Step.name's length
# A week: past it the interval timer overflows long before anyone waits for it.
MAX_TIMEOUT = 7 * 24 * 3600
TASK_NAME_RULE = (
    f"1 to {MAX_TASK_NAME} characters, each a letter, a digit or one of _ . - : < >, "
    "the first a letter, a digit or _ (a dotted path such as myapp.tasks.send_email); "
    "no /, ?, #, %, space or control character"
)
# \w is Unicode-aware: Python identifiers in any script are letters here, so every
# function's dotted path (including "<locals>" and "<lambda>") fits the rule.
_TASK_NAME = re.compile(r"\w[\w.:<>-]*")


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
        return declare(fn, name=name, queue=queue, priority=priority,
                       max_attempts=max_attempts, backoff=backoff, timeout=timeout,
                       atomic=atomic, steps=steps)

    return register(func) if func is not None else register


def declare(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    queue: str | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    backoff: Backoff | None = None,
    timeout: int | None = None,
    atomic: bool | None = None,
    steps: list[str] | tuple[str, ...] = (),
    reserved: frozenset[str] = ENQUEUE_OPTIONS,
) -> Task:
    """`@task`'s registration, every option checked.

    `reserved`: parameter names the task may not take, because the way its jobs are
    enqueued takes them as options (`jobs.enqueue(name, *args, queue=..., **kwargs)`).
    jobs.backends passes none: Django's API keeps a task's arguments and its job
    options apart (`.using()`), so a task may take a parameter named `priority`.
    """
    given = name is not None  # an explicit "" is refused, not replaced by the default
    task_name = check_task_name(name if given else _qualified(fn),
                                "name" if given else "the task's dotted path")
    clash = reserved & set(inspect.signature(fn).parameters)
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
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)
                                or not 1 <= timeout <= MAX_TIMEOUT):
        raise TaskRegistrationError(
            f"Task {task_name!r}: timeout must be an int of seconds from 1 to "
            f"{MAX_TIMEOUT} (a week), got {shown(timeout)}")
    if atomic is not None and not isinstance(atomic, bool):
        raise TaskRegistrationError(
            f"Task {task_name!r}: atomic must be True, False or None, got {shown(atomic)}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise TaskRegistrationError(
            f"Task {task_name!r}: backoff must be a jobs.Backoff or None, "
            f"got {type(backoff).__name__}")
    if not isinstance(steps, (list, tuple)):  # a str would become one step per letter
        raise TaskRegistrationError(
            f"Task {task_name!r}: steps must be a list or tuple of step names, "
            f"got {type(steps).__name__}")
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


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def get_task(name: str) -> Task:
    """The task registered as `name`, or UnknownTaskError (also for a name that is not
    text: a list would otherwise escape as a TypeError from the dict lookup)."""
    found = _registry.get(name) if isinstance(name, str) else None
    if found is None:
        raise UnknownTaskError(
            f"No task is registered as {shown(name)}. Registered: {sorted(_registry) or 'none'}. "
            "Is its module imported (an app's tasks.py, or JOBS['TASK_MODULES'])?"
        )
    return found


def registered_tasks() -> dict[str, Task]:
    return dict(_registry)


def longest_timeout() -> int:
    """The longest any registered task may run (seconds): what django-q2's hard timeout
    and a worker session's idle-in-transaction limit must exceed."""
    return max([conf.get().default_timeout]
               + [t.timeout for t in _registry.values() if t.timeout])


def is_registered(t: Task) -> bool:
    """True if `t` is the very task registered under its name (not a stale copy)."""
    return _registry.get(t.name) is t



def check_task_name(name: Any, argument: str = "name") -> str:
    """`name` if it fits the task-name rule, else InvalidTaskName naming `argument` and
    the rule.

    The one rule for task names, checked at registration (@task, the django.tasks
    backend), so every registered name can travel where names go: dashboard URLs
    (a "/" would make reverse() fail on every page that links the task), logs,
    command lines and the database column.
    """
    if (not isinstance(name, str) or len(name) > MAX_TASK_NAME
            or _TASK_NAME.fullmatch(name) is None):
        raise InvalidTaskName(f"{argument} {shown(name)} is not a valid task name: "
                              f"a task name is {TASK_NAME_RULE}")
    return name


def validate_plan(names: list[str] | tuple[str, ...]) -> list[str]:
    """Declared step names: non-empty text the database can store, at most 200
    characters, unique within the job (a step's checkpoint is found by its name)."""
    names = list(names)
    if not all(isinstance(n, str) and n and len(n) <= MAX_STEP_NAME for n in names):
        raise StepError(f"step names must be non-empty strings of at most {MAX_STEP_NAME} "
                        f"characters: {shown(names, 300)}")
    for n in names:
        try:
            check_text(n, f"the step name {n[:40]!r}")
        except UnstorableValue as exc:
            raise StepError(str(exc)) from None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StepError(f"step names must be unique within a job; repeated: {duplicates}")
    return names


def check_priority(priority: Any) -> int:
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise InvalidJobOption(
            f"priority must be an int from {low} to {high}, got {shown(priority)}")
    return priority


def check_max_attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidJobOption(f"max_attempts must be an int from 1 to 1000, got {shown(value)}")
    return value
