"""Job ids: UUIDv7 (RFC 9562), time first, so new jobs sort together.

A status change rewrites a job's row with a new entry in every index, the
primary key's included, and each attempt adds an entry to (job, number). With
random (v4) ids those entries land on random pages of indexes that grow with
the history: with a million finished jobs, draining new ones touched (and
wrote in full after each checkpoint) pages all over them. v7 ids keep the
entries of recent jobs together at the right edge of those indexes.

The first hex digits are the clock, shared by every job of the same minute,
so lists show an id's *last* 8 digits (`short_id`), and search finds them on an
index of that same expression (`tail`, job_id_tail_idx). Those 32 bits are the
clock too, in microseconds (wrapping every 72 minutes), strictly increasing
within a process: a random tail put each new entry of that index (one per
status change) on a random page of it, which cost enqueue 15 % of its speed
with a million finished jobs (bench/bench_scale.py, growth); a clock tail puts
it beside those of the jobs made just before. The 42 bits between the two
clocks are random, so ids stay unique; two processes may give the same short
id within the same microsecond, and search then lists both.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import CharField
from django.db.models.functions import Cast, Right

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62


_TAIL_BITS = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_clock = threading.Lock()
_last_micros = 0


def uuid7() -> uuid.UUID:
    """48 bits of Unix milliseconds, 42 random bits, 32 bits of microseconds."""
    global _last_micros
    now = time.time_ns()
    with _clock:
        micros = max(now // 1000, _last_micros + 1)  # never the same twice in a process
        _last_micros = micros
    return _pack(now // 1_000_000, micros)


def uuid7_at(when: datetime) -> uuid.UUID:
    """The id a job made at `when` was given, for a data set of past jobs
    (bench/generate_jobs.py): the same layout, without this process's strictly
    increasing tail (the random bits keep such ids apart)."""
    micros = (when - _EPOCH) // timedelta(microseconds=1)
    return _pack(micros // 1000, micros)


def _pack(millis: int, micros: int) -> uuid.UUID:
    rand = int.from_bytes(os.urandom(6), "big")
    rand_a = (rand >> 30) & 0xFFF
    rand_b = (rand & ((1 << 30) - 1)) << _TAIL_BITS | micros & ((1 << _TAIL_BITS) - 1)
    return uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80 | _VERSION | rand_a << 64
                     | _VARIANT | rand_b)


SHORT = 8  # hex digits of an id that lists show


def short_id(pk: Any) -> str:
    """What lists show of an id: its last 8 hex digits."""
    return str(pk).replace("-", "")[-SHORT:]


def tail(field: str = "id") -> Right:
    """short_id in SQL, as indexed by job_id_tail_idx: the last 8 characters of the
    id's text (PostgreSQL's has dashes, SQLite's has none; the last 12 are digits)."""
    return Right(Cast(field, output_field=CharField()), SHORT)
