"""Cron and time-zone math: pure functions, no database.

Time rules (see docs/schedules.md): the expression is read in the schedule's
IANA time zone and each wall-clock time fires at most once. A time the clock
shows twice (autumn) fires at its first occurrence; a time the clock skips
(spring) fires at the first valid instant after the gap, e.g. 03:00 for
02:30 in Europe/Berlin. croniter itself fires repeated times twice, so we
iterate it on naive wall-clock times and map them to instants ourselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterError, croniter
from django.core.exceptions import ValidationError
from django.utils import timezone

# Cron steps tried before giving up on finding a time (guards odd expressions).
MAX_STEPS = 10_000
ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


# --- time math ----------------------------------------------------------------


def next_run_after(cron: str, time_zone: str, after: datetime) -> datetime:
    """The first due time strictly after `after`, as an aware UTC datetime."""
    require_aware(after)
    tz = ZoneInfo(time_zone)
    walls = croniter(cron, after.astimezone(tz).replace(tzinfo=None))
    for _ in range(MAX_STEPS):
        instant = _instant(walls.get_next(datetime), tz)
        if instant > after:
            return instant.astimezone(UTC)
    raise ValueError(f"no run time of {cron!r} found after {after.isoformat()}")


def last_run_at_or_before(cron: str, time_zone: str, at: datetime) -> datetime:
    """The latest due time at or before `at` (UTC, aware); the mirror of next_run_after."""
    require_aware(at)
    tz = ZoneInfo(time_zone)
    start = at.astimezone(tz).replace(tzinfo=None) + timedelta(microseconds=1)
    walls = croniter(cron, start)
    for _ in range(MAX_STEPS):
        instant = _instant(walls.get_prev(datetime), tz)
        if instant <= at:
            return instant.astimezone(UTC)
    raise ValueError(f"no run time of {cron!r} found before {at.isoformat()}")


def upcoming(cron: str, time_zone: str, count: int = 5, after: datetime | None = None
             ) -> list[datetime]:
    """The next `count` due times (UTC, aware): what the admin preview and `schedules list` show."""
    when = after or timezone.now()
    times: list[datetime] = []
    for _ in range(count):
        when = next_run_after(cron, time_zone, when)
        times.append(when)
    return times


def format_run(when: datetime, time_zone: str) -> str:
    """A due time as operators read it: local in the schedule's zone, then UTC.

    A zone that is UTC itself ("UTC", "Etc/UTC") is said once: "21:15 UTC (UTC)
    = 21:15 UTC" repeats one fact three times and reads like two different times.
    """
    local = when.astimezone(ZoneInfo(time_zone))
    utc = f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if local.tzname() == "UTC" and not local.utcoffset():
        return utc
    return f"{local:%Y-%m-%d %H:%M %Z} ({time_zone}) = {utc}"


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """Map a naive wall-clock time to one instant: first occurrence, or end of a DST gap."""
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first occurrence of a repeated time
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first valid instant after the DST gap that swallowed `wall` (e.g. 03:00)."""
    # fold=1 reads the wall time with the offset after the change, fold=0 with
    # the one before: the change happened between those two instants.
    lo = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    after_offset = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz)


def require_aware(value: datetime) -> None:
    if timezone.is_naive(value):
        raise ValueError(f"expected a timezone-aware datetime, got naive {value!r}")


# --- validation -----------------------------------------------------------------


def validate_cron(expression: str) -> str:
    """Return the expression normalized, or raise ValidationError saying what is wrong.

    Minute resolution only (five fields or an @alias): seconds would need a
    faster tick than the maintenance thread's. croniter's random (R) and hashed
    (H) fields are refused: their times would differ between clusters.
    """
    expr = " ".join(str(expression).split())
    if not expr:
        raise ValidationError("Enter a cron expression.", code="required")
    if expr.startswith("@"):
        if expr.lower() not in ALIASES:
            raise ValidationError(
                f"Unknown alias {expr!r}; use one of {', '.join(sorted(ALIASES))}.",
                code="invalid_cron",
            )
        expr = expr.lower()
    else:
        fields = expr.split(" ")
        if len(fields) != 5:
            raise ValidationError(
                f"A cron expression has 5 fields (minute hour day month weekday), "
                f"{expr!r} has {len(fields)}.",
                code="invalid_cron",
            )
        tokens = {t.upper() for f in fields for t in _split_tokens(f)}
        if tokens & {"R", "H"}:
            raise ValidationError(
                "Random (R) and hashed (H) cron fields are not supported.", code="invalid_cron"
            )
    try:
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterError as exc:
        raise ValidationError(
            f"Invalid cron expression {expr!r}: {exc}", code="invalid_cron"
        ) from None
    return expr


def _split_tokens(field: str) -> list[str]:
    for sep in ",/-()#":
        field = field.replace(sep, " ")
    return field.split()


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(name: str) -> str:
    if not name:
        raise ValidationError("Enter an IANA time zone, e.g. Europe/Berlin or UTC.",
                              code="required")
    if name not in known_time_zones():
        raise ValidationError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC.",
            code="invalid_time_zone",
        )
    return name
