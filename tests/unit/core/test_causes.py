"""A failure's cause: what varies per job is taken out, what says why stays."""

import pytest

from jobs.core.causes import MAX_CAUSE, cause, normalize


@pytest.mark.parametrize("one, other", [
    ("bad row 7 in 'a.csv'", "bad row 12 in 'b.csv'"),
    ("user 3f1c2a9e-1111-4222-8333-444455556666 not found",
     "user 01a23509-caae-76cb-af39-f116dfc6ccc1 not found"),
    ("object at 0x7f3a2b1c has no attr", "object at 0x10 has no attr"),
    ('key "abc" missing', 'key "a much longer key" missing'),
    ("timeout after 30.5s", "timeout after 2s"),
    ("checksum deadbeefcafe1234 mismatch", "checksum 00112233445566778899 mismatch"),
    ("mail to bob@example.com failed", "mail to ann.lee+x@mail.example.org failed"),
    ("connection to 10.0.0.3, port 5432 failed", "connection to 10.0.0.9, port 6432 failed"),
])
def test_what_varies_per_job_does_not_split_a_cause(one, other):
    assert normalize(one) == normalize(other)


@pytest.mark.parametrize("one, other", [
    ("bad row 7", "missing column 7"),
    ("HTTP 503 from api", "HTTP 503 from billing"),
    ("it's John's", "it's Ann's"),  # apostrophes are words, not quotes
])
def test_different_words_are_different_causes(one, other):
    assert normalize(one) != normalize(other)


def test_the_cause_names_the_class_and_the_first_line_only():
    assert cause("ValueError", "bad row 7\n  in batch 3") == "ValueError: bad row <n>"
    assert cause("TimeoutError", "") == "TimeoutError"
    assert cause("KeyError", "'sku'") == "KeyError: '…'"


def test_a_huge_message_gives_a_bounded_cause():
    text = cause("RuntimeError", "word " * 100_000)
    assert len(text) == MAX_CAUSE and text.endswith("…")


def test_a_pathological_message_is_fast_enough_to_run_on_every_failure():
    # Unclosed quotes and long digit runs must not backtrack without end.
    assert normalize("'" + "a" * 10_000) == "'" + "a" * 3999  # unclosed: kept, cut at 4000
    assert normalize("row " + "1" * 10_000) == "row <hex>"
    assert normalize('"' + "\\" * 5000).startswith('"')
