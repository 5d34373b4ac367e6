"""Typed access to the JOBS settings dict, so defaults live in one place."""

from dataclasses import dataclass

from django.conf import settings

_DEFAULTS = {
    "DEFAULT_QUEUE": "default",
    "DEFAULT_MAX_ATTEMPTS": 3,
    "BACKOFF_BASE": 2.0,
    "BACKOFF_FACTOR": 2.0,
    "BACKOFF_CAP": 3600.0,
    "RESERVATION_SECONDS": 30.0,
    "LEASE_SECONDS": 30.0,
    "DEFAULT_TIMEOUT": 600,
    "SHUTDOWN_GRACE_SECONDS": 25.0,
    "REAPER_INTERVAL_SECONDS": 5.0,
    "TASK_MODULES": [],
    "MAINTENANCE_TICK_SECONDS": 0.5,
    "RETENTION_DAYS": 30,
    "DEAD_LETTER_ALERT_HOURS": 24.0,
}


@dataclass(frozen=True)
class JobsSettings:
    default_queue: str
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


def get() -> JobsSettings:
    raw = {**_DEFAULTS, **getattr(settings, "JOBS", {})}
    return JobsSettings(
        default_queue=raw["DEFAULT_QUEUE"],
        default_max_attempts=int(raw["DEFAULT_MAX_ATTEMPTS"]),
        backoff_base=float(raw["BACKOFF_BASE"]),
        backoff_factor=float(raw["BACKOFF_FACTOR"]),
        backoff_cap=float(raw["BACKOFF_CAP"]),
        reservation_seconds=float(raw["RESERVATION_SECONDS"]),
        lease_seconds=float(raw["LEASE_SECONDS"]),
        default_timeout=int(raw["DEFAULT_TIMEOUT"]),
        shutdown_grace_seconds=float(raw["SHUTDOWN_GRACE_SECONDS"]),
        reaper_interval_seconds=float(raw["REAPER_INTERVAL_SECONDS"]),
        task_modules=tuple(raw["TASK_MODULES"]),
        maintenance_tick_seconds=float(raw["MAINTENANCE_TICK_SECONDS"]),
        retention_days=int(raw["RETENTION_DAYS"]),
        dead_letter_alert_hours=float(raw["DEAD_LETTER_ALERT_HOURS"]),
    )
