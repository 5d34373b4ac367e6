"""jobs.dialect: one instance per vendor, None for an unsupported one, and the methods
the operator's pages call (row estimates, argument filters, percentiles)."""

import pytest

from jobs import dialect
from jobs.database import connection
from jobs.models import Job
from tests.factories import JobFactory


def test_one_dialect_per_supported_vendor_and_none_for_another():
    assert dialect.for_vendor("postgresql") is dialect.for_vendor("postgresql")
    assert isinstance(dialect.for_vendor("sqlite"), dialect.SQLite)
    assert dialect.for_vendor("mysql") is None
    assert dialect.current() is dialect.for_vendor(connection.vendor)
    assert str(dialect.current()) == connection.vendor


@pytest.mark.django_db
def test_the_methods_the_operators_pages_call():
    d = dialect.current()
    JobFactory(kwargs={"user_id": 42})
    estimate = d.row_estimate(Job._meta.db_table)
    assert estimate is None if d.vendor == "sqlite" else isinstance(estimate, int)
    assert Job.objects.filter(d.args_match({"user_id": 42})).count() == 1
    assert Job.objects.filter(d.args_match({"user_id": 7})).count() == 0
    assert d.supports_percentiles == d.nested_args_filter == (d.vendor == "postgresql")
