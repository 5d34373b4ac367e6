"""When to try again: exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads a
burst of failures over the whole window, so retries of a shared outage do not
arrive in lockstep (see the AWS Architecture Blog, "Exponential Backoff And
Jitter").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs import conf


@dataclass(frozen=True)
class Backoff:
    base: float = 2.0  # seconds before the first retry's ceiling
    factor: float = 2.0
    cap: float = 3600.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError(
                f"Backoff needs base >= 0, cap >= 0 and factor >= 1, got {self}"
            )

    @classmethod
    def from_settings(cls) -> Backoff:
        s = conf.get()
        return cls(base=s.backoff_base, factor=s.backoff_factor, cap=s.backoff_cap)

    def ceiling(self, failed_attempts: int) -> float:
        """Upper bound of the delay after the n-th failed attempt (n >= 1)."""
        exponent = max(failed_attempts - 1, 0)
        # Cap before the power can overflow on absurd attempt counts.
        if exponent > 64:
            return self.cap
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0, self.ceiling(failed_attempts))


def next_run_at(
    now: datetime, backoff: Backoff, failed_attempts: int, rng: random.Random | None = None
) -> datetime:
    return now + timedelta(seconds=backoff.delay(failed_attempts, rng))


def retry_at(
    *,
    attempt_count: int,
    max_attempts: int,
    backoff: Backoff,
    permanent: bool,
    now: datetime,
    rng: random.Random | None = None,
) -> datetime | None:
    """When the next try may start, or None when the job should go to dead."""
    if permanent or attempt_count >= max_attempts:
        return None
    return next_run_at(now, backoff, attempt_count, rng)
