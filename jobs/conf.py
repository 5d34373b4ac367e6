"""The one `JOBS` setting: every default written here once, read lazily, typed.

A project sets only what it changes (`JOBS = {"DEFAULT_TIMEOUT": 120}`), or
maps its environment with `from_env()`; `q_cluster()` builds the django-q2
`Q_CLUSTER` dict this package needs. Values are checked at start-up
(`jobs.checks`), so a zero timeout or an empty queue name stops `manage.py
check` and `qcluster` with the variable named, instead of breaking every
enqueue later.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import environ
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

ENV_PREFIX = "JOBS_"
BROKER = "jobs.worker.broker.JobTableBroker"
# django-q2's hard timeout is the task's own plus this, so ours always fires first.
TIMEOUT_GRACE_SECONDS = 10

DEFAULTS: dict[str, Any] = {
    # The database alias (a key of DATABASES) that holds the engine's tables: every read,
    # write and transaction of jobs goes there, whatever DATABASE_ROUTERS say (a read
    # from a replica that lags would lie about a job's state; jobs.database).
    "DATABASE": "default",
    "DEFAULT_QUEUE": "default",
    # Queues a cluster serves unless `qcluster --queues` says otherwise; empty
    # means [DEFAULT_QUEUE].
    "QUEUES": [],
    "DEFAULT_MAX_ATTEMPTS": 3,
    "BACKOFF_BASE": 2.0,
    "BACKOFF_FACTOR": 2.0,
    "BACKOFF_CAP": 3600.0,
    # How long a cluster's reservation keeps other clusters off a queued job
    # before one of its workers claims it.
    "RESERVATION_SECONDS": 30.0,
    # A running job's lease; the worker renews it, the reaper acts once it lapses.
    "LEASE_SECONDS": 30.0,
    # Seconds an attempt may run unless its task says otherwise.
    "DEFAULT_TIMEOUT": 600,
    # On SIGTERM, running jobs get this long to finish before they are released.
    "SHUTDOWN_GRACE_SECONDS": 25.0,
    # How often each cluster looks for running jobs whose lease lapsed.
    "REAPER_INTERVAL_SECONDS": 5.0,
    # Extra modules imported at start-up so their @task functions register
    # (every installed app's `tasks` module is imported anyway).
    "TASK_MODULES": [],
    # How often each cluster's maintenance thread looks for due work.
    "MAINTENANCE_TICK_SECONDS": 0.5,
    # The jobs.purge_finished schedule deletes finished jobs older than this.
    "RETENTION_DAYS": 30,
    # The jobs.dead_letter_alert schedule mails ADMINS (once a day) about
    # unresolved dead letters older than this.
    "DEAD_LETTER_ALERT_HOURS": 24.0,
    # Size limits, so one job cannot fill the database or a page: a job's
    # arguments and its result as JSON, and an attempt's error message and
    # traceback (cut with a marker saying how much was cut).
    "MAX_ARGUMENTS_BYTES": 1_000_000,
    "MAX_RESULT_BYTES": 1_000_000,
    "MAX_ERROR_CHARS": 4_000,
    "MAX_TRACEBACK_CHARS": 32_000,
    # The furthest into the future a job may be scheduled.
    "MAX_DELAY_DAYS": 3650,
    # Priority aging: a due job gains one priority point for every this many
    # seconds it waits, so it ranks before every job that became due more than
    # (difference in priority) x this many seconds after it (docs/architecture.md).
    "PRIORITY_AGING_SECONDS": 10.0,
    # One job in every this many a cluster reserves is the longest-due one, whatever
    # its priority: a job with k due jobs ahead of it by run_after is taken within
    # (k + 1) x this many reservations, however wide the priorities (1: oldest first).
    "OLDEST_FIRST_EVERY": 4,
    # PostgreSQL: an idle cluster is woken by LISTEN/NOTIFY, and polls anyway this often.
    "LISTEN_FALLBACK_SECONDS": 1.0,
    # PostgreSQL: a direct connection (postgres://..., not through PgBouncer) for the
    # pusher's LISTEN, when DATABASES goes through a pooler in transaction mode,
    # where LISTEN hears nothing. Empty: the database's own connection settings, and
    # behind a pooler the pusher polls every Q_POLL (docs/deployment.md).
    "LISTEN_DATABASE_URL": "",
    # SQLite: a connection copies the WAL back into the database by itself only
    # past this many pages; below it every cluster does so in the background
    # (jobs.dialect.sqlite). 0 leaves SQLite's own threshold (1,000 pages).
    "SQLITE_AUTOCHECKPOINT_PAGES": 10_000,
    # Each cluster refreshes its row in the cluster registry this often; a row not
    # refreshed for three intervals is shown as gone, and deleted after a day.
    "CLUSTER_REFRESH_SECONDS": 5.0,
    # /healthz answers 503 when no cluster was seen for this long, or when the
    # oldest due job has waited longer than HEALTH_MAX_WAIT_SECONDS.
    "HEALTH_CLUSTER_SECONDS": 30.0,
    "HEALTH_MAX_WAIT_SECONDS": 300.0,
    # /metrics answers staff, and anyone sending "Authorization: Bearer <this>" when set.
    "METRICS_TOKEN": "",
    # PostgreSQL: once(key) waits at most this long for another transaction holding the
    # same key (a worker cut off mid-job, say); then the attempt fails with
    # OperationKeyBusy and is retried with backoff, instead of waiting without end.
    "ONCE_LOCK_TIMEOUT_SECONDS": 5.0,
}


@dataclass(frozen=True)
class JobsSettings:
    database: str
    default_queue: str
    queues: tuple[str, ...]
    default_max_attempts: int
    backoff_base: float
    backoff_factor: float
    backoff_cap: float
    reservation_seconds: float
    lease_seconds: float
    default_timeout: int
    shutdown_grace_seconds: float
    reaper_interval_seconds: float
    task_modules: tuple[str, ...]
    maintenance_tick_seconds: float
    retention_days: int
    dead_letter_alert_hours: float
    max_arguments_bytes: int
    max_result_bytes: int
    max_error_chars: int
    max_traceback_chars: int
    max_delay_days: int
    priority_aging_seconds: float
    oldest_first_every: int
    listen_fallback_seconds: float
    listen_database_url: str
    sqlite_autocheckpoint_pages: int
    cluster_refresh_seconds: float
    health_cluster_seconds: float
    health_max_wait_seconds: float
    metrics_token: str
    once_lock_timeout_seconds: float

    def served_queues(self) -> tuple[str, ...]:
        return self.queues or (self.default_queue,)


_cached: JobsSettings | None = None


def get() -> JobsSettings:
    """The JOBS setting merged over the defaults; read once, re-read after override_settings."""
    global _cached
    if _cached is None:
        _cached = _build(getattr(settings, "JOBS", {}))
    return _cached


def unknown_keys() -> list[str]:
    """Keys of JOBS that are no setting: a typo would otherwise be ignored in silence."""
    return sorted(set(getattr(settings, "JOBS", {})) - set(DEFAULTS))


def _build(given: dict[str, Any]) -> JobsSettings:
    raw = {**DEFAULTS, **given}
    values: dict[str, Any] = {}
    for f in fields(JobsSettings):
        key = f.name.upper()
        default, value = DEFAULTS[key], raw[key]
        try:
            values[f.name] = _typed(default, value)
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"JOBS[{key!r}] (env {ENV_PREFIX}{key}) must be a "
                f"{type(default).__name__}, got {value!r}"
            ) from None
    return JobsSettings(**values)


def _typed(default: Any, value: Any) -> Any:
    if isinstance(default, list):
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise TypeError(value)
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(value)
    if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)  # never round a setting silently
    return type(default)(value)


def _reset(*, setting: str, **_: Any) -> None:
    global _cached
    if setting == "JOBS":
        _cached = None


setting_changed.connect(_reset, dispatch_uid="jobs-conf-reset")


def from_env(env: environ.Env | None = None) -> dict[str, Any]:
    """The JOBS settings set in the environment (JOBS_<NAME>), parsed by their default's type.

    Only variables that are present are returned, so the defaults above stay
    the only defaults: `JOBS = jobs.conf.from_env()` in settings.py.
    """
    env = env or environ.Env()
    parse = {str: env.str, int: env.int, float: env.float, list: env.list}
    return {
        key: parse[type(default)](ENV_PREFIX + key)
        for key, default in DEFAULTS.items()
        if ENV_PREFIX + key in env.ENVIRON
    }


Q_CLUSTER_DEFAULTS: dict[str, Any] = {
    "name": "default",
    "workers": 2,
    "broker_class": BROKER,
    # django-q2's own ORM broker's database (unused with the Job table's broker), kept
    # on the engine's: q_cluster_from_env() follows JOBS_DATABASE.
    "orm": DEFAULTS["DATABASE"],
    # Jobs reserved per statement; None: POSTGRESQL_BULK or SQLITE_BULK
    # (jobs.worker.reservation.reservation_size).
    "bulk": None,
    # Reserved jobs waiting in django-q2's local queue for a free worker (its default is
    # workers squared). A job that outranks all that waits still starts after those and
    # the pusher's hand (bulk): 1 + 2 let a high-priority job behind 800 low ones of 2 s
    # start with the next free workers (within 2 s) where 16 + 4 held it 9-11 s; drains
    # of no-op jobs stayed within this machine's noise (docs/architecture.md, "Priority
    # and aging").
    "queue_limit": 1,
    "poll": 0.05,
    "save_limit": -1,
    # A worker is replaced after this many jobs (django-q2's default, 500, replaced
    # each worker every 1.5 s of a no-op drain and cost a fifth of its throughput:
    # a new process, its connections, its prepared statements). Q_CLUSTER's
    # max_rss recycles on memory instead.
    "recycle": 5000,
    # django-q2's own re-delivery and timeout are not used: the Job row's status
    # and lease decide what runs (see docs/architecture.md). They only must not
    # fire before ours: retry > timeout > the longest task timeout + grace.
    "retry": 3600,
    "timeout": 3000,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "scheduler": False,
    "label": "Cluster",
}
POSTGRESQL_BULK, SQLITE_BULK = 2, 16
# Environment variables q_cluster_from_env() reads, and the key each sets.
Q_ENV = {"Q_CLUSTER_NAME": "name", "Q_WORKERS": "workers", "Q_BULK": "bulk",
         "Q_POLL": "poll", "Q_RETRY": "retry", "Q_TIMEOUT": "timeout", "Q_RECYCLE": "recycle",
         "Q_QUEUE_LIMIT": "queue_limit"}


def q_cluster(**overrides: Any) -> dict[str, Any]:
    """The django-q2 `Q_CLUSTER` dict for a cluster that runs jobs from the Job table.

    `Q_CLUSTER = jobs.conf.q_cluster(workers=4)`; start-up checks refuse
    values that could deliver a job twice.
    """
    return {**Q_CLUSTER_DEFAULTS, **overrides}


def q_cluster_from_env(env: environ.Env | None = None, **overrides: Any) -> dict[str, Any]:
    """`q_cluster()` with the Q_* variables of Q_ENV applied."""
    env = env or environ.Env()
    given = {}
    for var, key in Q_ENV.items():
        if var in env.ENVIRON:
            cast = int if key == "bulk" else type(Q_CLUSTER_DEFAULTS[key])
            given[key] = {str: env.str, int: env.int, float: env.float}[cast](var)
    if ENV_PREFIX + "DATABASE" in env.ENVIRON:
        given["orm"] = env.str(ENV_PREFIX + "DATABASE")
    return q_cluster(**given, **overrides)
