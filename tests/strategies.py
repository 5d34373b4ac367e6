"""Hostile values for generated tests: what a careless or hostile caller sends.

Every entry point's property test draws from these, so a new kind of bad value
added here reaches every surface at once. Each strategy leans on the cases
that broke something before (NUL, lone surrogates, huge and deeply nested
values, non-finite and extreme floats, huge integers, padded and empty text,
URL-unsafe characters) and mixes them with ordinary values, so a test also
sees values that must come back exactly.
"""

from __future__ import annotations

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
