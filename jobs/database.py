"""The engine's one database: every read, write, transaction and raw connection of jobs
goes to the alias JOBS['DATABASE'], whatever the project's DATABASE_ROUTERS say.

A router that sends reads to a replica would have the engine read a job from a copy
that lags: a second `enqueue()` with the same key found no job there and hit the
unique constraint on the primary, and a page showed a state the job had left. The
engine's truth is one database, so routers are not asked.

What the engine uses instead of django.db's: `connection` (the alias's connection
of this thread, looked up at each use, as django.db's proxy does for "default"),
`atomic()`, `get_autocommit()`, `on_commit()`, `set_rollback()`, and, for the models,
`jobs.models.base` (querysets and saves pinned to the alias). A leaf beside
`jobs.conf`: it imports nothing else of jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections, transaction

from jobs import conf


def alias() -> str:
    """The engine's database alias, read at each use (override_settings changes it)."""
    return conf.get().database


class _EngineConnection:
    """django.db's `connection`, for the engine's alias rather than "default"."""

    def __getattr__(self, item: str) -> Any:
        return getattr(connections[alias()], item)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(connections[alias()], name, value)

    def __delattr__(self, name: str) -> None:
        delattr(connections[alias()], name)

    def __eq__(self, other: object) -> bool:
        return connections[alias()] == other

    __hash__ = None  # type: ignore[assignment]  # as django.db's proxy: not hashable


connection: Any = _EngineConnection()


def current() -> Any:
    """This thread's connection itself, for a hot path: each attribute read through
    `connection` is a thread-local lookup, and the worker's path made dozens per job."""
    return connections[alias()]


def atomic(*, savepoint: bool = True, durable: bool = False) -> transaction.Atomic:
    return transaction.atomic(using=alias(), savepoint=savepoint, durable=durable)


def get_autocommit() -> bool:
    return transaction.get_autocommit(using=alias())


def on_commit(func: Callable[[], Any], *, robust: bool = False) -> None:
    transaction.on_commit(func, using=alias(), robust=robust)


def set_rollback(rollback: bool) -> None:
    transaction.set_rollback(rollback, using=alias())
