"""Which jobs a filter means: one definition for the list, and for an action on
every job that matches it, run later by a job of its own.

Each filter maps to an index: status, queue and task lead indexes with
created_at, a failure cause is on job_failure_idx, time ranges on created_at,
and search is an exact idempotency key or job ids (`lookups.id_search`).
Argument values are matched on the task's own rows: by JSON containment on
PostgreSQL, by top-level key equality on SQLite (docs/operations.md).

A filter is stored as JSON (`freeze`) with its relative time range turned into
absolute times and an upper bound on created_at, so an action on "all 12,000
dead jobs of this task" acts on the jobs that matched when it was asked for,
not on jobs enqueued while it runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs import dialect
from jobs.core import serialization
from jobs.exceptions import InvalidJobOption, UnstorableValue
from jobs.models import DeadLetter, Job, JobStatus
from jobs.ops.lookups import id_search

LETTERS = {"open": "Unresolved dead letter", "resolved": "Dead letter resolved"}
# The engine's own tasks: the job that carries out an operation on every matching job
# (jobs.ops.bulk) is the console's work, not the project's, so job lists leave such jobs
# out unless asked to show them (`engine`) or a filter names them (see `hide_engine_jobs`).
OPERATION_TASK = "jobs.bulk_action"
ENGINE_TASKS = frozenset({OPERATION_TASK})
MAX_ARGS_CHARS = 2000
# Keys a stored filter may hold; anything else in one is refused, never ignored.
STORED_KEYS = frozenset({"status", "queue", "task", "cause", "letter", "since", "until", "q",
                         "args", "created_before"})


def parse_args_filter(text: str) -> dict[str, Any] | None:
    """An argument filter as typed (a JSON object), or InvalidJobOption saying why not."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_ARGS_CHARS:
        raise InvalidJobOption(f"args filter is at most {MAX_ARGS_CHARS} characters")
    try:
        value = serialization.parse_json(text, "args filter", 4 * MAX_ARGS_CHARS + 16)
    except UnstorableValue as exc:
        raise InvalidJobOption(f"args filter: {exc}") from None
    if not isinstance(value, dict) or not value:
        raise InvalidJobOption('args filter must be a JSON object, e.g. {"user_id": 42}')
    if not dialect.current().nested_args_filter:
        nested = [k for k, v in value.items() if isinstance(v, (dict, list))]
        if nested:
            raise InvalidJobOption(f"on SQLite args filter values must be plain (text, number, "
                                   f"true/false, null); {nested} are not")
    return value


def matching(f: dict[str, Any], now: datetime | None = None) -> QuerySet[Job]:
    """Jobs matching cleaned filter values (the dashboard form's, or `thaw`'s)."""
    now = now or timezone.now()
    qs = hide_engine_jobs(Job.objects.all(), f)
    if f.get("status"):
        qs = qs.filter(status=f["status"])
    if f.get("queue"):
        qs = qs.filter(queue=f["queue"])
    if f.get("task"):
        qs = qs.filter(task_name=f["task"])
    if f.get("cause"):
        qs = qs.filter(failure_cause=f["cause"], status__in=[JobStatus.DEAD, JobStatus.RETRYING])
    if f.get("letter"):
        open_letter = Exists(DeadLetter.objects.filter(job=OuterRef("pk"),
                                                       resolved_at__isnull=True))
        if f["letter"] == "open":
            qs = qs.filter(open_letter, status=JobStatus.DEAD)
        else:
            qs = qs.filter(~open_letter, status=JobStatus.DEAD)
    if f.get("last"):
        qs = qs.filter(created_at__gte=now - f["last"])
    if f.get("since"):
        qs = qs.filter(created_at__gte=f["since"])
    if f.get("until"):
        qs = qs.filter(created_at__lt=f["until"])
    if f.get("created_before"):
        qs = qs.filter(created_at__lte=f["created_before"])
    if f.get("q"):
        term = f["q"].strip()
        match = Q(idempotency_key=term)
        by_id = id_search(term)
        if by_id is not None:
            match |= by_id
        qs = qs.filter(match)
    if f.get("args"):
        qs = qs.filter(_args_match(f["args"]))
    return qs


def hide_engine_jobs(qs: QuerySet[Job], f: dict[str, Any]) -> QuerySet[Job]:
    """`qs` without the engine's own jobs, unless `f` asks for them (`engine`) or names
    them: a task filter, or a search (a job id, the task's name in the admin), so the link
    from an operation to its job, and a search for that task, still find them.

    The one rule for every job list: the dashboard's (through `matching`) and the admin's
    (its "engine's own jobs" filter)."""
    if f.get("engine") or f.get("task") or str(f.get("q") or "").strip():
        return qs
    return qs.exclude(task_name__in=ENGINE_TASKS)


def _args_match(value: dict[str, Any]) -> Q:
    return dialect.current().args_match(value)


def freeze(f: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Cleaned filter values as JSON, fixed in time (see the module's docstring)."""
    now = now or timezone.now()
    out: dict[str, Any] = {}
    for key in ("status", "queue", "task", "cause", "letter", "q"):
        if f.get(key):
            out[key] = str(f[key])
    if f.get("args"):
        out["args"] = f["args"]
    since = f.get("since")
    if f.get("last"):
        window_start = now - f["last"]
        since = max(since, window_start) if since else window_start
    if since:
        out["since"] = since.isoformat()
    if f.get("until"):
        out["until"] = f["until"].isoformat()
    out["created_before"] = now.isoformat()
    return out


def thaw(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored filter back as cleaned values; InvalidJobOption for one that is not ours."""
    if not isinstance(stored, dict) or set(stored) - STORED_KEYS:
        raise InvalidJobOption(f"not a stored job filter: {stored!r:.200}")
    out: dict[str, Any] = dict(stored)
    for key in ("since", "until", "created_before"):
        if key in out:
            parsed = parse_datetime(str(out[key]))
            if parsed is None:
                raise InvalidJobOption(f"stored filter {key} is not a time: {out[key]!r}")
            out[key] = parsed
    if "status" in out and out["status"] not in JobStatus.values:
        raise InvalidJobOption(f"stored filter status {out['status']!r} is not a job status")
    if "letter" in out and out["letter"] not in LETTERS:
        raise InvalidJobOption(f"stored filter letter must be one of {sorted(LETTERS)}")
    return out

