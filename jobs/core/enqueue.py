"""`enqueue()`: everything that can be wrong about a job is refused here, in the
caller's process, before a row is written, so a refusal never breaks the
caller's transaction and a worker is never the first to learn that a task
name is misspelt or an argument cannot be stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.utils import timezone

from jobs import conf, database, dialect, signals
from jobs.core import tracing
from jobs.core.queues import check_name, shown
from jobs.core.registry import (
    ENQUEUE_OPTIONS,
    MAX_IDEMPOTENCY_KEY,
    Task,
    check_max_attempts,
    check_priority,
    get_task,
    is_registered,
)
from jobs.core.serialization import check_json, check_text, stored_json
from jobs.exceptions import (
    IdempotencyConflict,
    InvalidJobArguments,
    InvalidJobOption,
    UnknownTaskError,
    UnstorableValue,
)
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
    existed, so it can never run. With an `idempotency_key`, a second call for
    the same task and arguments returns the first job instead of creating
    another; the same key for anything else raises IdempotencyConflict.
    Every refusal happens before the INSERT, so the caller's transaction stays
    usable.
    """
    return enqueue_call(task_or_name, args, kwargs, queue=queue, priority=priority,
                        run_after=run_after, max_attempts=max_attempts,
                        idempotency_key=idempotency_key, enqueued_by=enqueued_by)


def enqueue_call(
    task_or_name: Task | str,
    args: list[Any] | tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: str | None = None,
    priority: int | None = None,
    run_after: datetime | timedelta | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    enqueued_by: Any = None,
) -> Job:
    """`enqueue()` with the task's arguments as a list and a dict, apart from the job's
    options, so no argument can be taken for an option: a keyword argument named
    `queue` is the task's. The way in for callers that hold a call as data
    (jobs.backends, where Django's API hands over `args` and `kwargs`).

    `args` a list or tuple, `kwargs` a dict with str keys, else InvalidJobArguments.
    """
    if not isinstance(args, (list, tuple)):
        raise InvalidJobArguments(f"args must be a list or tuple, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise InvalidJobArguments(f"kwargs must be a dict, got {type(kwargs).__name__}")
    if not all(isinstance(k, str) for k in kwargs):
        keys = sorted({type(k).__name__ for k in kwargs if not isinstance(k, str)})
        raise InvalidJobArguments(f"kwargs keys must be str (keyword names), got {keys}")
    t = task_or_name if isinstance(task_or_name, Task) else get_task(task_or_name)
    if isinstance(task_or_name, Task) and not is_registered(t):
        raise UnknownTaskError(f"Task {t.name!r} is not the registered task of that name")

    try:
        t.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidJobArguments(f"Arguments do not fit task {t.name!r}: {exc}") from None
    json_args, json_kwargs = stored_arguments(t.name, list(args), kwargs)

    now = timezone.now()
    fields: dict[str, Any] = {
        "task_name": t.name,
        "args": json_args,
        "kwargs": json_kwargs,
        "queue": check_name(queue if queue is not None else t.queue or conf.get().default_queue),
        "priority": check_priority(priority if priority is not None else t.priority),
        "max_attempts": check_max_attempts(
            max_attempts if max_attempts is not None else t.effective_max_attempts()
        ),
        "run_after": _check_run_after(run_after, now),
        "created_at": now,
        "enqueued_by": _check_enqueued_by(enqueued_by),
        "traceparent": tracing.current_traceparent(),
    }
    if idempotency_key is None:
        return _create(t, fields)

    key = _check_idempotency_key(idempotency_key)
    existing = Job.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return _same_job(existing, t, fields)
    try:
        # A savepoint, so losing the race does not poison the caller's transaction.
        with database.atomic():
            return _create(t, {**fields, "idempotency_key": key})
    except IntegrityError:
        existing = Job.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return _same_job(existing, t, fields)


def _same_job(existing: Job, t: Task, fields: dict[str, Any]) -> Job:
    """The job a repeated key refers to, if it is the same work; a conflict otherwise.

    The same work is the same task called with the same arguments, however they
    were passed (`f(1, 2)` and `f(1, b=2)` are one call).
    """
    def call(args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        try:
            bound = t.signature.bind(*args, **kwargs)
        except TypeError:  # the stored job predates a signature change
            return None
        bound.apply_defaults()
        return dict(bound.arguments)

    theirs, mine = call(existing.args, existing.kwargs), call(fields["args"], fields["kwargs"])
    same = existing.task_name == t.name and (
        theirs == mine if theirs is not None and mine is not None
        else (existing.args, existing.kwargs) == (fields["args"], fields["kwargs"])
    )
    if not same:
        raise IdempotencyConflict(
            f"idempotency_key {existing.idempotency_key!r} already belongs to job "
            f"{existing.pk} ({existing.task_name} with other arguments or another task); "
            "use a key that names this work, e.g. f\"{task}:{object id}\"",
            existing_job_id=existing.pk,
        )
    return existing


def _create(t: Task, fields: dict[str, Any]) -> Job:
    # On SQLite, in autocommit, this process's enqueues take turns on a lock (one writer).
    with dialect.current().one_writer():
        if not t.steps:
            job = Job.objects.create(**fields)
        else:
            with database.atomic():
                job = Job.objects.create(**fields)
                # Planned steps show as pending before they run, so operators see what is
                # ahead.
                Step.objects.bulk_create([Step(job=job, position=i, name=name)
                                          for i, name in enumerate(t.steps, start=1)])
    signals.send(signals.job_enqueued, Job, job=job)
    return job


def stored_arguments(
    task_name: str, args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments as they will come back out of the database, or InvalidJobArguments.

    Strict (see jobs.core.serialization): a task must receive exactly what it
    was given, not a lossy stand-in such as a stringified datetime or a key
    turned into a string, and the arguments of one job are bounded in size.
    """
    limit = conf.get().max_arguments_bytes
    what = f"the arguments of task {task_name!r}"
    items = [(f"args[{i}]", a) for i, a in enumerate(args)]
    items += [(f"kwargs[{k[:40]!r}]", v) for k, v in kwargs.items()]
    try:
        check_json(items, what, limit)
        stored = stored_json([args, kwargs], what, limit)
    except UnstorableValue as exc:
        raise InvalidJobArguments(f"{exc} (task {task_name!r})") from None
    return stored[0], stored[1]


def _check_run_after(value: Any, now: datetime) -> datetime:
    latest = timedelta(days=conf.get().max_delay_days)
    if value is None:
        return now
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise InvalidJobOption(f"run_after must not be a negative delay, got {value!r}")
        if value > latest:
            raise InvalidJobOption(
                f"run_after is a delay of {value.days} days; the limit is {latest.days} "
                "(JOBS['MAX_DELAY_DAYS'])"
            )
        return now + value
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise InvalidJobOption(
                f"run_after must be timezone-aware, got naive {value!r} "
                "(use django.utils.timezone.now() or attach a tzinfo)"
            )
        try:  # the column stores the instant in UTC; it must exist there
            value.astimezone(UTC)
        except OverflowError:
            raise InvalidJobOption(
                f"run_after {value.isoformat()} falls outside the years 1 to 9999 in UTC, "
                "which a datetime cannot hold"
            ) from None
        if value - now > latest:
            raise InvalidJobOption(
                f"run_after {value.isoformat()} is more than {latest.days} days ahead "
                "(JOBS['MAX_DELAY_DAYS'])"
            )
        # A time already past means "now": a job cannot have waited before it existed.
        # Kept as given, year 1 would jump ahead of every priority through aging and
        # make /healthz report a wait of centuries.
        return max(value, now)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise InvalidJobOption(
            f"run_after takes a datetime or a timedelta, got the number {shown(value)} "
            "(use timedelta(seconds=...))"
        )
    raise InvalidJobOption(f"run_after takes a datetime or a timedelta, got {shown(value)}")


def _check_enqueued_by(user: Any) -> Any:
    """A saved user, or None: anything else would fail the caller's COMMIT later."""
    if user is None:
        return None
    model = get_user_model()
    if not isinstance(user, model):
        raise InvalidJobOption(
            f"enqueued_by must be a {model.__name__} or None, got {type(user).__name__}"
        )
    if user.pk is None or not model._default_manager.filter(pk=user.pk).exists():
        raise InvalidJobOption(
            f"enqueued_by must be a saved {model.__name__}; {user!r} is not in the database"
        )
    return user


def _check_idempotency_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidJobOption(
            f"idempotency_key must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY} "
            f"characters, got {shown(key)}"
        )
    try:
        return check_text(key, "idempotency_key")
    except UnstorableValue as exc:
        raise InvalidJobOption(str(exc)) from None


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
    for field, values in (("args", args), ("kwargs", kwargs)):
        try:
            stored_arguments(task.name, values if field == "args" else [],
                             values if field == "kwargs" else {})
        except InvalidJobArguments as exc:
            errors[field] = [str(exc)]
    return errors
