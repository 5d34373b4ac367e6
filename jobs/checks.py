"""Start-up checks: refuse settings under which a job could be delivered twice,
or that would break every enqueue later, and databases the job table was not
built for.

Django runs them before `qcluster`, `migrate` and `runserver` start (and in
`manage.py check`); an Error stops the command with a message naming the
setting and its variable.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from jobs import conf, dialect
from jobs.conf import BROKER, DEFAULTS, ENV_PREFIX, TIMEOUT_GRACE_SECONDS
from jobs.core.queues import QUEUE_NAME_RULE, check_name
from jobs.core.registry import longest_timeout
from jobs.exceptions import InvalidQueueName


def _name(key: str) -> str:
    return f"JOBS[{key!r}] (env {ENV_PREFIX}{key})"


@register("jobs")
def check_jobs_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Values no job could work with: refused here, not at the first enqueue."""
    try:
        js = conf.get()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="jobs.E010")]
    errors: list[Error] = []
    if unknown := conf.unknown_keys():
        errors.append(Error(
            f"JOBS has unknown key(s) {unknown}: they would be ignored.",
            hint=f"Known settings: {sorted(DEFAULTS)}.", id="jobs.E011",
        ))
    positive = (("DEFAULT_TIMEOUT", js.default_timeout),
                ("DEFAULT_MAX_ATTEMPTS", js.default_max_attempts),
                ("MAX_ARGUMENTS_BYTES", js.max_arguments_bytes),
                ("MAX_RESULT_BYTES", js.max_result_bytes),
                ("MAX_ERROR_CHARS", js.max_error_chars),
                ("MAX_TRACEBACK_CHARS", js.max_traceback_chars),
                ("MAX_DELAY_DAYS", js.max_delay_days),
                ("PRIORITY_AGING_SECONDS", js.priority_aging_seconds),
                ("LISTEN_FALLBACK_SECONDS", js.listen_fallback_seconds),
                ("CLUSTER_REFRESH_SECONDS", js.cluster_refresh_seconds),
                ("HEALTH_CLUSTER_SECONDS", js.health_cluster_seconds),
                ("HEALTH_MAX_WAIT_SECONDS", js.health_max_wait_seconds),
                ("ONCE_LOCK_TIMEOUT_SECONDS", js.once_lock_timeout_seconds))
    for key, value in positive:
        if value <= 0:
            errors.append(Error(
                f"{_name(key)} is {value}: it must be positive, or every job would "
                f"{'time out at once (or never)' if key == 'DEFAULT_TIMEOUT' else 'be refused'}.",
                hint=f"Set {ENV_PREFIX}{key} to a positive whole number "
                     f"(default {DEFAULTS[key]}).",
                id="jobs.E006",
            ))
    if js.database not in settings.DATABASES:
        errors.append(Error(
            f"{_name('DATABASE')} is {js.database!r}, which is no alias of DATABASES "
            f"({', '.join(map(repr, settings.DATABASES))}): no job could be read or written.",
            hint=f"Set {ENV_PREFIX}DATABASE to the alias that holds the jobs tables "
                 f"(default {DEFAULTS['DATABASE']!r}).",
            id="jobs.E013",
        ))
    if js.oldest_first_every < 1:
        errors.append(Error(
            f"{_name('OLDEST_FIRST_EVERY')} is {js.oldest_first_every}: one job in every "
            "this many a cluster reserves is the longest-due one, so it must be 1 or more.",
            hint=f"Set {ENV_PREFIX}OLDEST_FIRST_EVERY to a whole number from 1 (oldest "
                 f"first) up (default {DEFAULTS['OLDEST_FIRST_EVERY']}); a larger one "
                 "favours priority and lengthens the wait it bounds.",
            id="jobs.E014",
        ))
    for key, names in (("DEFAULT_QUEUE", [js.default_queue]), ("QUEUES", list(js.queues))):
        bad = [n for n in names if not _queue_name_ok(n)]
        if bad:
            errors.append(Error(
                f"{_name(key)} holds {bad!r}: {QUEUE_NAME_RULE}, or enqueue() refuses "
                "every job.",
                hint=f"Set {ENV_PREFIX}{key} (default {DEFAULTS[key]!r}).", id="jobs.E007",
            ))
    return errors


@register("jobs")
def check_cluster_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        js = conf.get()
    except ImproperlyConfigured:
        return []  # reported by check_jobs_settings
    q = getattr(settings, "Q_CLUSTER", {})
    errors: list[Error] = []
    if q.get("broker_class") != BROKER:
        errors.append(Error(
            f"Q_CLUSTER['broker_class'] is {q.get('broker_class')!r}: another broker would "
            "run django-q2's own queue, not the Job table, and jobs would never run.",
            hint=f"Use Q_CLUSTER = jobs.conf.q_cluster(), or set "
                 f"Q_CLUSTER['broker_class'] = {BROKER!r}.",
            id="jobs.E001",
        ))
    longest = longest_timeout()
    q_timeout = q.get("timeout")
    needed = longest + TIMEOUT_GRACE_SECONDS
    if q_timeout is not None and q_timeout < needed:
        errors.append(Error(
            f"Q_CLUSTER['timeout'] is {q_timeout} s but a task may run {longest} s: "
            "django-q2 would kill the worker before the job's own timeout is recorded, "
            "and the job would run again.",
            hint=f"Raise Q_TIMEOUT (Q_CLUSTER['timeout']) to at least {needed}, or lower "
                 "the longest task timeout / JOBS_DEFAULT_TIMEOUT.",
            id="jobs.E002",
        ))
    q_retry = q.get("retry", 60)
    if q_timeout is not None and q_retry <= q_timeout:
        errors.append(Error(
            f"Q_CLUSTER['retry'] ({q_retry} s) must exceed Q_CLUSTER['timeout'] "
            f"({q_timeout} s), or django-q2 re-delivers a task that is still running.",
            hint=f"Raise Q_RETRY (Q_CLUSTER['retry']) above {q_timeout}.", id="jobs.E003",
        ))
    if js.lease_seconds < 1:
        errors.append(Error(
            f"JOBS['LEASE_SECONDS'] is {js.lease_seconds}: leases under a second expire "
            "between heartbeats and healthy jobs would be reaped and run twice.",
            hint="Set JOBS_LEASE_SECONDS to 1 or more (30 is the default).", id="jobs.E004",
        ))
    if js.reaper_interval_seconds > js.lease_seconds * 10:
        errors.append(Error(
            "JOBS['REAPER_INTERVAL_SECONDS'] is far longer than the lease: orphans would "
            "wait long after their lease lapsed.",
            hint="Set JOBS_REAPER_INTERVAL_SECONDS at or below JOBS_LEASE_SECONDS.",
            id="jobs.E005",
        ))
    return errors


def _queue_name_ok(name: str) -> bool:
    """The one queue-name rule, jobs.core.queues.check_name's."""
    try:
        check_name(name)
    except InvalidQueueName:
        return False
    return True


@register("jobs")
def check_database_vendor(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Refuse, at start, an engine database (JOBS['DATABASE']) other than PostgreSQL or
    SQLite, naming what it is. The project's other databases are not the engine's."""
    try:
        alias = conf.get().database
    except ImproperlyConfigured:
        return []  # reported by check_jobs_settings
    if alias not in settings.DATABASES:
        return []  # likewise (jobs.E013)
    engine = settings.DATABASES[alias].get("ENGINE", "")
    vendor = _vendor(engine)
    # The databases the job table is built and tested for: those with a dialect
    # (jobs.dialect). Elsewhere the migrations may succeed and still leave out what the
    # promise rests on: MySQL and MariaDB skip the conditional unique constraint that
    # makes enqueue idempotent, and every claim fails.
    if dialect.for_vendor(vendor) is not None:
        return []
    return [Error(
        f"DATABASES[{alias!r}] is {_describe(alias, engine, vendor)}: truthful-jobs "
        "supports only PostgreSQL and SQLite. Elsewhere the migrations may succeed "
        "without the constraints jobs rely on (MySQL and MariaDB drop the conditional "
        "unique constraint of idempotent enqueue), and jobs would fail or run twice.",
        hint="Point DATABASE_URL at PostgreSQL (production) or SQLite (development), "
             f"or {ENV_PREFIX}DATABASE at an alias that is one.",
        id="jobs.E012",
    )]


def _vendor(engine: str) -> str:
    """The backend's vendor ("postgresql" for PostGIS too); without its driver, the
    engine's last name."""
    try:
        return dialect.engine_vendor(engine)
    except Exception:  # noqa: BLE001 - a backend that cannot load is named by its engine
        name = engine.rpartition(".")[2]
        return _ENGINE_VENDORS.get(name, name or repr(engine))


# Engines named otherwise than their vendor, for when their backend cannot load here.
_ENGINE_VENDORS = {"postgis": "postgresql", "spatialite": "sqlite", "sqlite3": "sqlite"}


def _describe(alias: str, engine: str, vendor: str) -> str:
    """What the alias is, e.g. "mysql (MariaDB 10.11.6)": a MySQL server is asked its
    version (over a connection closed at once) when it can be reached."""
    try:
        conn = connections[alias]
        if conn.settings_dict.get("ENGINE") != engine:
            return vendor
        if vendor == "mysql":  # the same backend serves both
            server = "MariaDB" if conn.mysql_is_mariadb else "MySQL"
            return f"{vendor} ({server} {'.'.join(map(str, conn.mysql_version))})"
        return f"{vendor} ({conn.display_name})"
    except Exception:  # noqa: BLE001 - unreachable or not loadable: the vendor says enough
        return vendor
