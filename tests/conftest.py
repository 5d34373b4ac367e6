import os

import pytest
from django.db import connection

import tests.tasks  # noqa: F401 - registers the test tasks in this process
from tests.cluster import ClusterProcess


def pytest_report_header(config):
    return f"DATABASE_URL={os.environ.get('DATABASE_URL', '(default: SQLite)')}"


@pytest.fixture
def cluster_factory(transactional_db):
    """Start real qcluster processes on the test database; stopped at teardown."""
    started: list[ClusterProcess] = []

    def start(**kwargs) -> ClusterProcess:
        c = ClusterProcess(**kwargs)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


@pytest.fixture
def on_postgres():
    """Concurrency tests must run on PostgreSQL in CI: fail loudly, never skip."""
    if os.environ.get("CI") and connection.vendor != "postgresql":
        pytest.fail("CI must run this test on PostgreSQL (set DATABASE_URL)")
    return connection.vendor == "postgresql"
