"""Job ids are UUIDv7: ordered by creation time, at both ends."""

import uuid

from jobs.models import ids
from jobs.models.ids import uuid7
from jobs.ops.presentation import short_id
from tests.factories import JobFactory


def test_a_uuid7_holds_the_millisecond_version_and_variant(monkeypatch):
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_764_650_000_123_456_789)
    value = uuid7()
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert value.int >> 80 == 1_764_650_000_123


def test_later_milliseconds_sort_after_earlier_ones(monkeypatch):
    clock = iter(range(1_764_650_000_000_000_000, 1_764_650_001_000_000_000, 1_000_000))
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock))
    made = [uuid7() for _ in range(200)]
    assert made == sorted(made)


def test_ids_of_one_millisecond_differ_where_the_lists_look(monkeypatch):
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_764_650_000_000_000_000)
    made = [uuid7() for _ in range(1000)]
    assert len(set(made)) == 1000
    # The first 8 digits are the clock, the same for all; the tail tells them apart.
    assert len({str(u)[:8] for u in made}) == 1
    assert len({short_id(u) for u in made}) == 1000


def test_the_shown_tail_follows_the_clock_so_its_index_grows_in_one_place(monkeypatch):
    """A random tail put each entry of job_id_tail_idx on a random page of it."""
    start = 1_900_000_000_000_000_000  # ns
    clock = iter(range(start, start + 10**9, 7_000))  # a job every 7 microseconds
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock))
    monkeypatch.setattr(ids, "_last_micros", 0)
    tails = [int(short_id(uuid7()), 16) for _ in range(500)]
    assert tails == sorted(tails) and tails[-1] - tails[0] == 499 * 7
    assert tails[0] == (start // 1000) % 2**32


def test_new_jobs_get_uuid7_ids(db):
    assert JobFactory().pk.version == 7


def test_an_id_for_a_past_time_has_the_layout_of_one_made_then(monkeypatch):
    from datetime import UTC, datetime, timedelta

    when = datetime.fromtimestamp(1_764_650_000, tz=UTC) + timedelta(microseconds=123_456)
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_764_650_000_123_456_000)
    monkeypatch.setattr(ids, "_last_micros", 0)
    made_then, made_for = uuid7(), ids.uuid7_at(when)
    assert made_for.version == 7 and made_for.variant == uuid.RFC_4122
    assert made_for.int >> 80 == made_then.int >> 80  # the same millisecond
    assert short_id(made_for) == short_id(made_then)  # the same microsecond tail
