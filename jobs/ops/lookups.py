"""How the screens find and count job rows, without reading a million of them.

Query logic both the admin and the dashboard use, and the background engine
too (`jobs.ops.bulk` counts what a filter matches, `jobs.ops.search` finds
typed ids): a count that stops at a cap, the time windows a list filters on,
and what a typed job id finds. It lives apart from `jobs.ops.presentation`
(how a job looks) so that the engine never imports display code; an
import-linter contract in pyproject.toml holds that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import Q, QuerySet
from django.db.models.lookups import Exact
from django.utils import timezone

from jobs.models import Job
from jobs.models.ids import SHORT, tail

# --- Counts that stop at a cap --------------------------------------------------------

# Past this many matching rows the screens say "more than 10000" instead of
# counting: COUNT(*) over a million rows takes seconds, and nobody pages that far.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class CappedCount:
    """How many rows match, up to `cap`; `capped` when there are more."""

    value: int
    capped: bool
    cap: int

    @property
    def text(self) -> str:
        """'1234', or 'more than 10000' past the cap: the number never pretends."""
        return f"more than {self.cap}" if self.capped else str(self.value)

    def __str__(self) -> str:
        return self.text


def capped_count(queryset: QuerySet, cap: int | None = None) -> CappedCount:
    """Count the matching rows, stopping after cap + 1 of them.

    `SELECT COUNT(*) FROM (SELECT id ... LIMIT cap+1)`: the database walks at
    most cap + 1 index entries, however many rows match. `cap` defaults to
    COUNT_CAP, read at call time.
    """
    cap = COUNT_CAP if cap is None else cap
    counted = queryset.order_by().values("pk")[: cap + 1].count()
    return CappedCount(value=min(counted, cap), capped=counted > cap, cap=cap)


# --- Time windows ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """A time filter's window: its URL key, its label, and how far back it reaches."""

    key: str  # in URLs: ?created=24h, ?last=24h
    label: str
    delta: timedelta

    def start(self, now: datetime | None = None) -> datetime:
        """The earliest time inside the window ending `now`."""
        return (now or timezone.now()) - self.delta


# The windows every time filter offers, each one range on an indexed timestamp.
TIME_RANGES: dict[str, TimeRange] = {
    r.key: r for r in (
        TimeRange("15m", "Last 15 minutes", timedelta(minutes=15)),
        TimeRange("1h", "Last hour", timedelta(hours=1)),
        TimeRange("24h", "Last 24 hours", timedelta(hours=24)),
        TimeRange("7d", "Last 7 days", timedelta(days=7)),
    )
}


def time_range_choices() -> list[tuple[str, str]]:
    """(key, label) pairs for a filter's choices, shortest window first."""
    return [(r.key, r.label) for r in TIME_RANGES.values()]


# --- Finding jobs by id ---------------------------------------------------------------

HEX = frozenset("0123456789abcdef")
TAIL_MATCHES = 100


def id_search(term: str, field: str = "pk") -> Q | None:
    """A Q for the job ids in `term`, or None when `term` holds no id.

    Whole UUIDs (one, or several separated by spaces or commas) match exactly.
    One run of 8+ hex digits (dashes allowed) matches the ids that start with
    it, as a range on `field`'s index (PostgreSQL's uuid and SQLite's hex text
    alike); exactly 8 also match the ids that end with them, which is what the
    lists show (`short_id`), on the index job_id_tail_idx. Never a LIKE over
    every row; shorter runs match too much to be useful and are refused.
    """
    tokens = term.replace(",", " ").split()
    if not tokens:
        return None
    try:
        return Q(**{f"{field}__in": [UUID(t) for t in tokens]})
    except ValueError:
        pass
    if len(tokens) != 1:
        return None
    digits = tokens[0].replace("-", "").lower()
    if not (SHORT <= len(digits) < 32 and set(digits) <= HEX):
        return None
    low, high = UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))
    by_prefix = Q(**{f"{field}__gte": low, f"{field}__lte": high})
    if len(digits) != SHORT:
        return by_prefix
    # What the lists show (short_id), on the index job_id_tail_idx.
    if field in ("pk", "id"):
        return by_prefix | Q(Exact(tail(field), digits))
    # A foreign key ("job_id"): the jobs first, or an OR with a subquery would scan
    # every attempt. Two random 32-bit tails rarely meet; TAIL_MATCHES bounds it.
    jobs = Job.objects.filter(Exact(tail("id"), digits)).values_list("pk", flat=True)
    return by_prefix | Q(**{f"{field}__in": list(jobs[:TAIL_MATCHES])})
