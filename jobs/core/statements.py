"""The worker's hot statements (reserve, claim, succeed, renew), planned once, not per job.

Django sends parameters inlined into the SQL text on psycopg 3 (unless a project
sets `server_side_binding`) and never prepares, so PostgreSQL plans every
statement afresh: for the claim that takes longer than running it. These few
statements are sent with server-side parameters and prepared on their first
run on a connection. They still pass through Django's cursor wrapper (error
translation, execute wrappers). Elsewhere (SQLite, psycopg 2), and while
queries are logged (DEBUG, a test capturing them), they take Django's own
cursor. Behind PgBouncer in transaction mode this needs PgBouncer 1.21 or later
(max_prepared_statements), as any prepared statement does.

A prepared statement keeps its result type, so none of them says `RETURNING *`:
a column a newer migration adds must not break a running worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model

try:
    from psycopg import ClientCursor as _ClientBindingCursor
    from psycopg import Connection as _PsycopgConnection
    from psycopg import Cursor as _ServerBindingCursor
except ImportError:  # SQLite only, or psycopg 2
    _PsycopgConnection = _ServerBindingCursor = _ClientBindingCursor = None
else:

    class _PreparingCursor(_ServerBindingCursor):
        """Prepares each statement on its first run (Django turns psycopg's automatic
        preparation off): the connection keeps it, by name, for every later job."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                    binary: bool | None = None) -> Any:
            return super().execute(query, params, prepare=prepare is not False, binary=binary)

M = TypeVar("M", bound=Model)
_NEVER_AUTOMATICALLY = 2**31


def _connection() -> Any:
    # The thread's connection itself: every attribute read through django.db's
    # `connection` proxy is a thread-local lookup, and the worker's path made dozens
    # per job.
    return connections[DEFAULT_DB_ALIAS]


def cursor() -> Any:
    """A Django cursor whose parameters the server binds (psycopg 3), else a plain one."""
    conn = _connection()
    if _ServerBindingCursor is None or conn.vendor != "postgresql" or (
        conn.queries_logged  # DEBUG or a test capturing: the log wants the SQL text
    ):
        return conn.cursor()
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    raw = conn.connection
    if not isinstance(raw, _PsycopgConnection):
        return conn.cursor()
    if raw.prepare_threshold is None and issubclass(raw.cursor_factory, _ClientBindingCursor):
        # Django's default: client-side binding, which never prepares, and psycopg's
        # preparation switched off. Switch it on for what asks for it (only these
        # statements do) and never automatically.
        raw.prepare_threshold = _NEVER_AUTOMATICALLY
    with conn.wrap_database_errors:
        return conn.make_cursor(_PreparingCursor(raw))


def fetchone(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple | None:
    with cursor() as c:
        c.execute(sql, params)
        return c.fetchone()


def columns(model: type[Model]) -> str:
    """The model's columns, in field order, for a RETURNING or SELECT list."""
    return ", ".join(connection.ops.quote_name(f.column) for f in model._meta.concrete_fields)


def instance(model: type[M], row: Sequence[Any]) -> M:
    """A model instance from a row in `columns(model)` order (plus anything after it),
    converted as Django converts what it reads (JSON text, say)."""
    conn = _connection()
    attnames, converters = _reading(model, conn)
    values = []
    for (column, convert), value in zip(converters, row, strict=False):
        for of_backend, one in convert:
            value = one(conn.ops, value, column, conn) if of_backend else one(value, column, conn)
        values.append(value)
    return model.from_db(conn.alias, attnames, values)


_READING: dict[tuple[type, type], tuple[list[str], list[tuple[Any, list[tuple[bool, Any]]]]]] = {}


def _reading(model: type[Model], conn: Any) -> tuple[list[str], list[tuple[Any, list[Any]]]]:
    """Per model and database backend, once: the attribute names, and each column with
    Django's converters for it (the backend's, then the field's, as its compiler
    applies them). The backend's are kept unbound and bound to the caller's
    connection at each use: the cache holds no connection, which must close when
    its thread ends."""
    key = (model, type(conn))
    if key not in _READING:
        converters = []
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            convert = [(True, c.__func__) if getattr(c, "__self__", None) is conn.ops
                       else (False, c) for c in conn.ops.get_db_converters(column)]
            convert += [(False, c) for c in field.get_db_converters(conn)]
            converters.append((column, convert))
        _READING[key] = ([f.attname for f in model._meta.concrete_fields], converters)
    return _READING[key]
