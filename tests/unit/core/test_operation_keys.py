"""once() refuses, before any SQL, a key it could not store exactly (issue 21): the
project's InvalidOperationKey naming the rule, never a raw DataError, and the
caller's transaction stays usable."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from jobs import once
from jobs.exceptions import InvalidOperationKey
from jobs.models import OperationKey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("key, rule", [
    ("invoice:\x00", "NUL character"),
    ("\x00", "NUL character"),
    ("bad \ud800", "lone surrogate '\\ud800' at index 4"),
    ("\udfff", "lone surrogate"),
    ("", "1 to 255 characters, got 0"),
    ("k" * 256, "1 to 255 characters, got 256"),
    (None, "not a NoneType"),
    (b"invoice:1", "not a bytes"),
    (42, "not a int"),
])
def test_a_key_that_cannot_be_stored_is_refused_naming_the_rule_before_any_sql(key, rule):
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured, \
                pytest.raises(InvalidOperationKey) as refused:
            once(key)
        assert rule in str(refused.value)
        assert captured.captured_queries == []
        # The caller's transaction is still usable, and nothing was written.
        assert OperationKey.objects.count() == 0
        assert once("after-a-refusal") is True
    assert list(OperationKey.objects.values_list("key", flat=True)) == ["after-a-refusal"]


@pytest.mark.parametrize("key", ["k" * 255, " padded ", "\ufeff\u202e", "😀" * 255, "a/b?c#d"])
def test_a_storable_key_reads_back_exactly(key):
    with transaction.atomic():
        assert once(key) is True
        assert once(key) is False
    assert list(OperationKey.objects.values_list("key", flat=True)) == [key]
