import os

import psycopg
import pytest
from django.db import connection

from jobs.core.queues import CHANNEL
from jobs.worker import heartbeat
from tests.cluster import ClusterProcess


def pytest_report_header(config):
    return f"DATABASE_URL={os.environ.get('DATABASE_URL', '(default: SQLite)')}"


def pytest_itemcollected(item):
    """A browser test starts Chromium and a live server: it is slow like every test that
    starts real processes, so `pytest -m "not slow"` is the fast loop (`make test` runs
    plain pytest: everything)."""
    if item.get_closest_marker("browser"):
        item.add_marker(pytest.mark.slow)


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests are deselected, loudly, on a local SQLite run.

    In CI (CI is set) nothing is deselected: there they must run, and fail
    if the database is not PostgreSQL.
    """
    on_sqlite = "postgres" not in os.environ.get("DATABASE_URL", "")
    if os.environ.get("CI") or not on_sqlite:
        return
    keep = [i for i in items if "postgres_only" not in i.keywords]
    dropped = [i for i in items if "postgres_only" in i.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        print(f"\nNOT RUN on SQLite ({len(dropped)} PostgreSQL-only tests): "
              + ", ".join(i.nodeid for i in dropped))


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


@pytest.fixture(scope="session", autouse=True)
def _heartbeat_closed_before_the_test_database_goes(django_db_setup, django_db_blocker):
    """In-process run_job() starts the worker's heartbeat thread with its own, kept
    connection; close it before pytest-django drops the test database."""
    yield
    with django_db_blocker.unblock():
        heartbeat.shutdown()


@pytest.fixture
def listening(on_postgres):
    """A connection LISTENing on the clusters' wake-up channel (PostgreSQL)."""
    assert on_postgres
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    yield conn
    conn.close()


# Generated tests (tests/property/): a bounded profile for CI and `make test`, and a
# longer one to hunt with (HYPOTHESIS_PROFILE=hunt). Examples a run finds are pinned
# as @example in the test, so they run forever after, whatever the database holds.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
settings.register_profile(
    "hunt", max_examples=1000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
