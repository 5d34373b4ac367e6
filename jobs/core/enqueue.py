"""`enqueue()`: everything that can be wrong about a job is refused here, in the
caller's process, before a row is written, so a refusal never breaks the
caller's transaction and a worker is never the first to learn that a task
name is misspelt or an argument cannot be stored.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import conf
from jobs.core.registry import (
    ENQUEUE_OPTIONS,
    MAX_IDEMPOTENCY_KEY,
    Task,
    check_max_attempts,
    check_priority,
    check_queue,
    get_task,
    is_registered,
)
from jobs.core.serialization import stored_json
from jobs.exceptions import InvalidJobArguments, InvalidJobOption, UnknownTaskError
from jobs.models import Job, Step


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
    if isinstance(task_or_name, Task) and not is_registered(t):
        raise UnknownTaskError(f"Task {t.name!r} is not the registered task of that name")

    try:
        t.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidJobArguments(f"Arguments do not fit task {t.name!r}: {exc}") from None
    json_args = [json_value(a, f"args[{i}]", t.name) for i, a in enumerate(args)]
    json_kwargs = {k: json_value(v, f"kwargs[{k!r}]", t.name) for k, v in kwargs.items()}

    now = timezone.now()
    fields: dict[str, Any] = {
        "task_name": t.name,
        "args": json_args,
        "kwargs": json_kwargs,
        "queue": check_queue(queue if queue is not None else t.queue or conf.get().default_queue),
        "priority": check_priority(priority if priority is not None else t.priority),
        "max_attempts": check_max_attempts(
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
        # Planned steps show as pending before they run, so operators see what is ahead.
        Step.objects.bulk_create(
            [Step(job=job, position=i, name=name) for i, name in enumerate(t.steps, start=1)]
        )
    return job


def json_value(value: Any, where: str, task_name: str) -> Any:
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


def validate_task_call(task_name: str, args: Any, kwargs: Any) -> dict[str, list[str]]:
    """What enqueue() would refuse about this call, keyed by field; empty if it is fine.

    For rows that enqueue later (schedules): they are refused when saved, not
    when they fire at 3 a.m.
    """
    try:
        task = get_task(task_name)
    except UnknownTaskError as exc:
        return {"task_name": [str(exc)]}
    errors: dict[str, list[str]] = {}
    if not isinstance(args, list):
        errors["args"] = [f"args must be a JSON list, got {type(args).__name__}."]
    if not isinstance(kwargs, dict):
        errors["kwargs"] = [f"kwargs must be a JSON object, got {type(kwargs).__name__}."]
    elif reserved := sorted(ENQUEUE_OPTIONS & set(kwargs)):
        errors["kwargs"] = [f"kwargs may not use enqueue() option names: {reserved}."]
    if errors:
        return errors
    try:
        task.signature.bind(*args, **kwargs)
    except TypeError as exc:
        field = "kwargs" if "keyword" in str(exc) or "multiple values" in str(exc) else "args"
        return {field: [f"Arguments do not fit task {task.name!r}: {exc}"]}
    for field, values in (("args", dict(enumerate(args))), ("kwargs", kwargs)):
        for key, value in values.items():
            try:
                json_value(value, f"{field}[{key!r}]", task.name)
            except InvalidJobArguments as exc:
                errors.setdefault(field, []).append(str(exc))
    return errors
