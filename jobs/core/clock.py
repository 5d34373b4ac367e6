"""The clock that decides: the database's, never the host's.

Every comparison that decides (is the job due, has its lease lapsed) and every
time written for such a later comparison (run_after, lease_expires_at, and the
started_at / finished_at they are read with) is the database's clock, never the
clock of the host that happens to run the statement: a worker whose clock runs a
minute ahead must not start jobs a minute early, nor a reaper whose clock runs
ahead take jobs from live workers. A host's own clock is for its log lines.

On PostgreSQL that is statement_timestamp(): the time this statement started.
Not now() (= CURRENT_TIMESTAMP, the start of the transaction), which inside a
longer transaction (a caller's, a test's) would be a stale "now"; not
clock_timestamp(), which is volatile: read again for every row, so one statement
would not agree with itself, and a condition on it cannot use an index. On
SQLite the database runs in this process and reads this host's clock anyway, so
the Python clock *is* the database's clock there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, Value
from django.db.models.functions import Now
from django.utils import timezone

from jobs import dialect
from jobs.database import connection


class DatabaseNow(Now):
    """The database's clock, as a query expression: statement_timestamp() on
    PostgreSQL (Django's Now), this process's clock on SQLite, written as Django
    writes datetimes there (Now's STRFTIME would cut it to milliseconds)."""

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return compiler.compile(Value(timezone.now(), output_field=DateTimeField()))


def database_now(now: datetime | None = None) -> Any:
    """`now` as an expression when the caller gave one, else the database's clock."""
    return DatabaseNow() if now is None else Value(now, output_field=DateTimeField())


def database_now_plus(delay: timedelta) -> Any:
    """The database's clock plus `delay`, as an expression (a lease's end, a retry's due
    time). On SQLite computed here: its clock is this process's."""
    if dialect.current().clock_in_statement:
        return ExpressionWrapper(DatabaseNow() + Value(delay, output_field=DurationField()),
                                 output_field=DateTimeField())
    return Value(timezone.now() + delay, output_field=DateTimeField())


def read_database_now() -> datetime:
    """The database's clock, read with a statement of its own (a tick's one reading,
    never a job's): on SQLite this process's clock, without a statement."""
    sql = dialect.current().read_now_sql
    if sql is None:
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]
