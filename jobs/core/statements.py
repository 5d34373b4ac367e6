"""The worker's hot statements (reserve, claim, succeed, renew), planned once, not per job.

Django sends parameters inlined into the SQL text on psycopg 3 (unless a project
sets `server_side_binding`) and never prepares, so PostgreSQL plans every
statement afresh: for the claim that takes longer than running it. These few
statements are sent with server-side parameters and prepared on their first
run on a connection. They still pass through Django's cursor wrapper (error
translation, execute wrappers). Elsewhere (SQLite, psycopg 2), and while
queries are logged (DEBUG, a test capturing them), they take Django's own
cursor.

Only on a connection that reaches PostgreSQL itself. Behind a pooler (PgBouncer
in transaction mode) the client's connection is lent a different server
connection per transaction: a statement prepared on one is missing on the
next, and another client's `_pg3_0` may already be there, as another
statement. So each connection is looked at once, on its first use here: a
pooler answers the startup with its own cancel key, so the backend pid the
client was told differs from `pg_backend_pid()`, and such a connection sends
the same statements unprepared (still with server-side parameters, as the
unnamed statement that pooling passes through). Should a pooler slip past
that check, its refusal (SQLSTATE 42P05 or 26000) turns preparing off for the
connection too, logged once; the statement that met it fails, and its caller
gives the job back (docs/deployment.md, "PgBouncer").

A prepared statement keeps its result type, so none of them says `RETURNING *`:
a column a newer migration adds must not break a running worker.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db.models import Model

from jobs import database, dialect
from jobs.dialect.base import columns

__all__ = ["columns", "cursor", "fetchone", "instance", "pooled", "prepares"]

logger = logging.getLogger("jobs.statements")

try:
    from psycopg import ClientCursor as _ClientBindingCursor
    from psycopg import Connection as _PsycopgConnection
    from psycopg import Cursor as _ServerBindingCursor
    from psycopg import errors as _errors
except ImportError:  # SQLite only, or psycopg 2
    _PsycopgConnection = _ServerBindingCursor = _ClientBindingCursor = None
else:
    # What a pooler answers a prepared statement with: the name is already taken on
    # the server connection it lent (42P05), or missing there (26000).
    _POOLED_REFUSALS = (_errors.DuplicatePreparedStatement, _errors.InvalidSqlStatementName)

    class _PreparingCursor(_ServerBindingCursor):
        """Prepares each statement on its first run (Django turns psycopg's automatic
        preparation off): the connection keeps it, by name, for every later job."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                    binary: bool | None = None) -> Any:
            try:
                return super().execute(query, params, prepare=prepare is not False,
                                       binary=binary)
            except _POOLED_REFUSALS:
                _refused(self.connection)
                raise

    class _UnpreparedCursor(_ServerBindingCursor):
        """Server-side parameters, never prepared: the unnamed statement, which a pooler
        in transaction mode passes through whole."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                    binary: bool | None = None) -> Any:
            return super().execute(query, params, prepare=False, binary=binary)

M = TypeVar("M", bound=Model)
_NEVER_AUTOMATICALLY = 2**31


def cursor() -> Any:
    """A Django cursor whose parameters the server binds (psycopg 3), else a plain one."""
    conn = database.current()
    if _ServerBindingCursor is None or not dialect.of(conn).server_binds or (
        conn.queries_logged  # DEBUG or a test capturing: the log wants the SQL text
    ):
        return conn.cursor()
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    raw = conn.connection
    if not isinstance(raw, _PsycopgConnection):
        return conn.cursor()
    with conn.wrap_database_errors:
        if not prepares(raw):
            return conn.make_cursor(_UnpreparedCursor(raw))
        if raw.prepare_threshold is None and issubclass(raw.cursor_factory,
                                                        _ClientBindingCursor):
            # Django's default: client-side binding, which never prepares, and psycopg's
            # preparation switched off. Switch it on for what asks for it (only these
            # statements do) and never automatically.
            raw.prepare_threshold = _NEVER_AUTOMATICALLY
        return conn.make_cursor(_PreparingCursor(raw))


# Per psycopg connection, decided on its first use here: whether it prepares.
_PREPARES: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_told: set[str] = set()


def prepares(raw: Any) -> bool:
    """Whether statements are prepared on this psycopg connection: only when it reaches
    PostgreSQL itself, not a pooler (one round trip, once per connection)."""
    decided = _PREPARES.get(raw)
    if decided is None:
        decided = _PREPARES[raw] = not pooled(raw)
        if not decided:
            _tell_once("pooled", "the database connection goes through a connection pooler "
                       "(PgBouncer?): the worker's statements are sent unprepared",
                       level=logging.INFO)
    return decided


def pooled(raw: Any) -> bool:
    """Whether a psycopg connection goes through a pooler (PgBouncer, pgcat, Odyssey...).

    A pooler answers the client's startup itself, with a cancel key of its own (it
    must route cancel requests), so the backend pid the client was told is not that
    of the server process its statements reach. Directly connected, they are equal.
    """
    with raw.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        row = c.fetchone()
    return row is None or row[0] != raw.info.backend_pid


def _refused(raw: Any) -> None:
    """A pooler refused a prepared statement on a connection that looked direct: prepare
    nothing more on it. The statement that met the refusal still fails (it aborted
    its transaction); its caller gives the job back."""
    _PREPARES[raw] = False
    _tell_once("refused", "a prepared statement was refused (a connection pooler in "
               "transaction mode?): this connection sends its statements unprepared from "
               "now on")


def _tell_once(key: str, message: str, level: int = logging.WARNING) -> None:
    if key not in _told:
        _told.add(key)
        logger.log(level, message)


def fetchone(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple | None:
    with cursor() as c:
        c.execute(sql, params)
        return c.fetchone()


def instance(model: type[M], row: Sequence[Any]) -> M:
    """A model instance from a row in `columns(model)` order (plus anything after it),
    converted as Django converts what it reads (JSON text, say)."""
    conn = database.current()
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
