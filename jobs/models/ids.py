"""Job ids: UUIDv7 (RFC 9562), time first, so new jobs sort together.

A status change rewrites a job's row with a new entry in every index, the
primary key's included, and each attempt adds an entry to (job, number). With
random (v4) ids those entries land on random pages of indexes that grow with
the history: with a million finished jobs, draining new ones touched (and
wrote in full after each checkpoint) pages all over them. v7 ids keep the
entries of recent jobs together at the right edge of those indexes.

The first hex digits are the clock, shared by every job of the same minute,
so lists show an id's *last* digits (`short_id`), which are random, and
search finds them on an index of that same expression (`tail`).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from django.db.models import CharField
from django.db.models.functions import Cast, Right

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62


def uuid7() -> uuid.UUID:
    """48 bits of Unix milliseconds, then 74 random bits (Python < 3.14 has none)."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
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
