"""Model-level behaviour the worker path relies on."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Attempt, Step
from tests.factories import AttemptFactory


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Attempt, Step])
def test_default_ordering_of_attempts_and_steps_does_not_join_the_job_table(model):
    """Ordering by the relation ("job") would JOIN jobs_job on every default query."""
    AttemptFactory()
    with CaptureQueriesContext(connection) as captured:
        list(model.objects.all())
    (select,) = captured.captured_queries
    assert "JOIN" not in select["sql"].upper()
    assert "ORDER BY" in select["sql"].upper()
