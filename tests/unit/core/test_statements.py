"""The worker's hot statements on PostgreSQL: prepared once per connection, and safe
against a column a newer migration adds while workers hold them prepared."""

import pytest
from django.db import connection

from jobs import enqueue
from jobs.models import JobStatus
from jobs.worker.runner import run_job

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


def test_claim_and_success_are_prepared_once_and_reused(on_postgres):
    assert on_postgres
    for n in range(3):
        assert run_job(enqueue("tests.add", n, b=1).pk) == JobStatus.SUCCEEDED
    statements = prepared()
    assert len([s for s in statements if "claimed AS" in s]) == 1
    assert len([s for s in statements if "succeeded" in s]) == 1


def test_a_column_added_while_statements_are_prepared_breaks_no_claim(on_postgres):
    assert on_postgres
    assert run_job(enqueue("tests.add", 1, b=1).pk) == JobStatus.SUCCEEDED
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE jobs_job ADD COLUMN added_by_a_newer_release integer")
    try:
        job = enqueue("tests.add", 2, b=2)
        assert run_job(job.pk) == JobStatus.SUCCEEDED
        job.refresh_from_db()
        assert job.result == 4
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE jobs_job DROP COLUMN added_by_a_newer_release")
