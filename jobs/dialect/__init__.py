"""The database dialects: every SQL text of the worker's hot path and every difference
between PostgreSQL and SQLite, behind one interface (`base.Dialect`).

    from jobs import dialect
    d = dialect.current()          # the engine connection's dialect
    d.claim_sql(autocommit), d.bulk_size, d.clock_in_statement, ...

One instance per vendor, made on first use. Below jobs.core: it imports
jobs.models, jobs.database, jobs.conf and jobs.exceptions, never the engine.
"""

from __future__ import annotations

from typing import Any

from django.db.utils import load_backend

from jobs import database
from jobs.dialect.base import Dialect
from jobs.dialect.postgresql import PostgreSQL
from jobs.dialect.sqlite import SQLite

__all__ = ["Dialect", "PostgreSQL", "SQLite", "current", "engine_vendor", "for_vendor", "of"]

SUPPORTED: dict[str, type[Dialect]] = {"postgresql": PostgreSQL, "sqlite": SQLite}
_by_vendor: dict[str, Dialect] = {}
# Any other vendor: the portable forms. The engine refuses such a database (jobs.E012).
_PORTABLE = Dialect()


def for_vendor(vendor: str) -> Dialect | None:
    """The dialect of a supported vendor ("postgresql", "sqlite"), else None."""
    found = _by_vendor.get(vendor)
    if found is None and vendor in SUPPORTED:
        found = _by_vendor[vendor] = SUPPORTED[vendor]()
    return found


def of(connection: Any) -> Dialect:
    """The dialect of a Django connection (any alias)."""
    vendor = connection.vendor
    return _by_vendor.get(vendor) or for_vendor(vendor) or _PORTABLE


def current() -> Dialect:
    """The dialect of the engine's connection (JOBS['DATABASE'])."""
    return of(database.current())


def engine_vendor(engine: str) -> str:
    """The vendor of a database ENGINE ("postgresql" for PostGIS too); raises when its
    backend cannot load here."""
    return load_backend(engine).DatabaseWrapper.vendor
