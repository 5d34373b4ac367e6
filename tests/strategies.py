"""Hostile values for generated tests: what a careless or hostile caller sends.

Every entry point's property test draws from these, so a new kind of bad value
added here reaches every surface at once. Each strategy leans on the cases
that broke something before (NUL, lone surrogates, huge and deeply nested
values, non-finite and extreme floats, huge integers, padded and empty text,
URL-unsafe characters) and mixes them with ordinary values, so a test also
sees values that must come back exactly.
"""

from __future__ import annotations

import datetime as dt
import math
import sys

from hypothesis import strategies as st

NUL = "\x00"
SURROGATE = "\ud800"
URL_UNSAFE = "/?#%&=+ \\\"'<>;"

# Text of every kind Python can hold, surrogates included (Hypothesis leaves out Cs by
# default), weighted towards the characters that broke things.
nasty_chars = st.one_of(
    st.sampled_from([NUL, SURROGATE, "\udfff", "\ufeff", "\u202e", "\n", "\t", *URL_UNSAFE]),
    st.characters(codec=None, exclude_categories=()),
)
nasty_text = st.one_of(
    st.text(nasty_chars, max_size=40),
    st.sampled_from(["", " ", " padded", "padded ", "a/b", "%%%", "..", "NaN", "null",
                     "stauts=dead", "status", "\u0000", "\\ud800", "x" * 300]),
)
# Ordinary text that must round-trip exactly (no NUL, no surrogate).
plain_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=NUL),
                     max_size=40)

extreme_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e16, 1e308, -0.0, 5e-324, 2.0 ** 53 + 1, 1.5, math.inf, -math.inf,
                     math.nan, sys.float_info.max, 0.1]),
)
# Past 4,300 digits Python refuses int -> str; built lazily so a repr never prints them.
huge_ints = st.one_of(
    st.integers(),
    st.sampled_from([2 ** 63, -(2 ** 63) - 1, 2 ** 64]),
    st.sampled_from([4300, 4301, 10_000]).map(lambda digits: 10 ** digits),
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
)
scalars = st.one_of(st.none(), st.booleans(), huge_ints, extreme_floats, nasty_text)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(nasty_text, inner, max_size=4)),
    max_leaves=12,
)


def deep(depth: int) -> list:
    """A list nested `depth` levels deep (a RecursionError waiting to happen)."""
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


deeply_nested = st.sampled_from([deep(65), deep(1000), deep(10_000)])
non_json = st.sampled_from([(1, 2), {1, 2}, frozenset(), b"bytes", object(), {1: "int key"},
                            {("t",): 1}, complex(1, 2)])
hostile_values = st.one_of(json_like, deeply_nested, non_json)

# What a form field or query parameter may carry as text.
hostile_param = st.one_of(
    nasty_text,
    st.sampled_from(["1e16", "1e308", "-0.0", "NaN", "Infinity", "-Infinity", "1" * 5000,
                     '{"a": NaN}', '{"a": "\\u0000"}', '{"a": "\\ud800"}', "[" * 10_000,
                     '{"a": 1e400}', "{}", "[]", '{"": 1}', "x" * 100_001]),
)

# Names (issue 21): task and queue names at both edges of their rules, and the text that
# broke dashboard URLs ("/") or that pause() refused while enqueue() took it (" padded").
name_chars = st.one_of(
    st.sampled_from([*"._-:<>", "a", "Z", "0", "é", "任", *URL_UNSAFE, NUL, SURROGATE, "\n",
                     "\t", "\x7f", "\u00a0", "\u2028", "\u202e", "\ufeff"]),
    nasty_chars,
)
task_names = st.one_of(
    st.sampled_from(["tests.add", "myapp.tasks.send_email", "m.<locals>.f", "m.<lambda>",
                     "reports/daily", "a?b", "a#b", "a%2Fb", "", ".", "..", "-a", " a", "a ",
                     "x" * 200, "x" * 201, "a\x00", "a\ud800"]),
    st.text(name_chars, max_size=12),
    st.text(name_chars, min_size=195, max_size=205),
    st.from_regex(r"\w[\w.:<>-]{0,30}", fullmatch=True),
)
queue_names = st.one_of(
    st.sampled_from(["default", "emails", "q", "x" * 64, "x" * 65, "", " ", " padded",
                     "padded ", "a b", "a/b", "a\x00b", "a\ud800", "a\nb", "a\u00a0b"]),
    nasty_text,
    st.text(name_chars, min_size=60, max_size=70),
)
# Whatever a careless caller puts where an int, a flag or a name is expected.
option_values = st.one_of(st.none(), st.booleans(), huge_ints, extreme_floats, nasty_text,
                          st.sampled_from([[], {}, (1,), b"1", "1", object()]))
timedeltas = st.one_of(
    st.timedeltas(),
    st.sampled_from([dt.timedelta(0),
                     dt.timedelta(days=3650),
                     dt.timedelta(days=3650, microseconds=1),
                     dt.timedelta(microseconds=-1)]),
)
datetimes = st.one_of(
    st.datetimes(),  # naive
    st.datetimes(timezones=st.timezones()),
    st.datetimes(timezones=st.sampled_from([dt.UTC])),
    st.datetimes(min_value=dt.datetime(1, 1, 1),
                 max_value=dt.datetime(1, 1, 2),
                 timezones=st.sampled_from([dt.timezone(dt.timedelta(hours=14))])),
)
# Past JOBS['MAX_ARGUMENTS_BYTES'] (1,000,000 bytes as JSON by default).
huge_values = st.sampled_from(["x" * 1_000_001, ["y" * 1000] * 1001, {"k": "é" * 600_000}])


def same(a, b) -> bool:
    """Equal and of the same JSON type all the way down: 1 is not 1.0, -0.0 is not 0.0,
    True is not 1; the order of object keys does not matter."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
