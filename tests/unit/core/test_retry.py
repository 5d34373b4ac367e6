import random
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.core.retry import Backoff, retry_at


def test_ceiling_grows_exponentially_and_is_capped():
    b = Backoff(base=2, factor=3, cap=100)
    assert [b.ceiling(n) for n in range(1, 6)] == [2, 6, 18, 54, 100]
    assert b.ceiling(10_000) == 100  # no overflow on absurd counts


def test_full_jitter_stays_within_zero_and_the_ceiling_and_spreads():
    b = Backoff(base=10, factor=2, cap=60)
    rng = random.Random(7)
    delays = [b.delay(3, rng) for _ in range(2000)]
    assert min(delays) >= 0 and max(delays) <= 40
    # Full jitter spreads over the whole window, not a narrow band near the top.
    assert min(delays) < 4 and max(delays) > 36


@pytest.mark.parametrize("bad", [dict(base=-1), dict(cap=-1), dict(factor=0.5)])
def test_nonsense_backoff_is_refused(bad):
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**bad)


def test_retry_at_until_attempts_are_exhausted():
    now = timezone.now()
    b = Backoff(base=4, factor=2, cap=100)
    first = retry_at(attempt_count=1, max_attempts=3, backoff=b, permanent=False, now=now)
    assert now <= first <= now + timedelta(seconds=4)
    assert retry_at(attempt_count=3, max_attempts=3, backoff=b, permanent=False, now=now) is None


def test_permanent_failure_never_retries():
    b = Backoff()
    now = timezone.now()
    assert retry_at(attempt_count=1, max_attempts=9, backoff=b, permanent=True, now=now) is None
