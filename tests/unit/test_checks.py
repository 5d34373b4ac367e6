import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from jobs.checks import check_cluster_settings, check_database_vendor, check_jobs_settings
from jobs.core.registry import _registry, task
from jobs.worker import heartbeat


@pytest.fixture(autouse=True)
def _no_heartbeat_reading_the_settings():
    """These tests set JOBS to values no worker could run with; a heartbeat thread an
    earlier in-process run_job() left idling reads the settings on each tick and would
    die on them. It is started again on demand (heartbeat.ensure_started)."""
    heartbeat.shutdown()

# `check` runs here with databases=[]: Django 6.1 runs the model checks against every
# alias by default, and on SQLite the JSONField one opens the database, which these tests
# may not.


def ids(errors):
    return sorted(e.id for e in errors)


def test_shipped_settings_pass():
    assert check_cluster_settings() == []
    assert check_jobs_settings() == []
    assert check_database_vendor() == []


@pytest.mark.parametrize(
    ("jobs_overrides", "expected", "variable"),
    [
        ({"DEFAULT_TIMEOUT": 0}, "jobs.E006", "JOBS_DEFAULT_TIMEOUT"),
        ({"DEFAULT_TIMEOUT": -5}, "jobs.E006", "JOBS_DEFAULT_TIMEOUT"),
        ({"DEFAULT_MAX_ATTEMPTS": 0}, "jobs.E006", "JOBS_DEFAULT_MAX_ATTEMPTS"),
        ({"DEFAULT_QUEUE": ""}, "jobs.E007", "JOBS_DEFAULT_QUEUE"),
        ({"DEFAULT_QUEUE": "   "}, "jobs.E007", "JOBS_DEFAULT_QUEUE"),
        ({"QUEUES": ["default", ""]}, "jobs.E007", "JOBS_QUEUES"),
        ({"DEFAULT_TIMEOUT": "ten"}, "jobs.E010", "JOBS_DEFAULT_TIMEOUT"),
        ({"DEFAULT_TIMEOUT": 2.5}, "jobs.E010", "JOBS_DEFAULT_TIMEOUT"),
        ({"QUEUES": "reports"}, "jobs.E010", "JOBS_QUEUES"),
        ({"DEFAULT_TIMEOUTS": 60}, "jobs.E011", "DEFAULT_TIMEOUTS"),
        ({"OLDEST_FIRST_EVERY": 0}, "jobs.E014", "JOBS_OLDEST_FIRST_EVERY"),
        ({"OLDEST_FIRST_EVERY": 1.5}, "jobs.E010", "JOBS_OLDEST_FIRST_EVERY"),
    ],
)
def test_settings_no_job_could_work_with_stop_check_and_name_the_variable(
    settings, jobs_overrides, expected, variable
):
    settings.JOBS = {**settings.JOBS, **jobs_overrides}
    errors = check_jobs_settings()
    assert ids(errors) == [expected]
    assert variable in errors[0].msg + (errors[0].hint or "")
    with pytest.raises(SystemCheckError, match=expected):
        call_command("check", databases=[])


@pytest.mark.parametrize(
    ("q_overrides", "jobs_overrides", "expected", "hint"),
    [
        ({"broker_class": None}, {}, "jobs.E001", "broker_class"),
        ({"timeout": 30}, {}, "jobs.E002", "Q_TIMEOUT"),
        ({"retry": 100, "timeout": 3000}, {}, "jobs.E003", "Q_RETRY"),
        ({}, {"LEASE_SECONDS": 0.5}, "jobs.E004", "JOBS_LEASE_SECONDS"),
        ({}, {"REAPER_INTERVAL_SECONDS": 3600}, "jobs.E005", "REAPER_INTERVAL"),
    ],
)
def test_settings_that_could_deliver_a_job_twice_are_refused(
    settings, q_overrides, jobs_overrides, expected, hint
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, **q_overrides}
    settings.JOBS = {**settings.JOBS, **jobs_overrides}
    errors = check_cluster_settings()
    assert expected in ids(errors)
    assert any(hint in (e.hint or "") for e in errors)
    with pytest.raises(SystemCheckError, match=expected):
        call_command("check", databases=[])


def test_a_task_timeout_longer_than_django_q2s_is_caught(settings):
    @task(name="tests.very_long", timeout=5000)
    def very_long():
        return None

    try:
        assert "jobs.E002" in ids(check_cluster_settings())
    finally:
        _registry.pop("tests.very_long")


# Overriding DATABASES leaves the open connections alone: only the check reads it here.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.parametrize(
    ("engine", "vendor"),
    [
        ("django.db.backends.oracle", "oracle"),  # its driver is not installed: named anyway
        ("django.db.backends.mysql", "mysql"),  # no MySQLdb under these settings
        ("thirdparty.backends.cockroachdb", "cockroachdb"),
    ],
)
def test_a_database_other_than_postgresql_or_sqlite_is_refused_by_name(settings, engine, vendor):
    settings.DATABASES = {**settings.DATABASES,
                          "legacy": {"ENGINE": engine, "NAME": "jobs", "HOST": "nowhere"}}
    assert check_database_vendor() == []  # not the engine's: the project's own business
    settings.JOBS = {**settings.JOBS, "DATABASE": "legacy"}
    errors = check_database_vendor()
    assert ids(errors) == ["jobs.E012"]
    assert f"DATABASES['legacy'] is {vendor}" in errors[0].msg
    assert "PostgreSQL and SQLite" in errors[0].msg
    with pytest.raises(SystemCheckError, match="jobs.E012"):
        call_command("check", databases=[])


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.parametrize("engine", ["django.db.backends.postgresql", "django.db.backends.sqlite3",
                                    "django.contrib.gis.db.backends.postgis",
                                    "django.contrib.gis.db.backends.spatialite"])
def test_postgresql_and_sqlite_pass_whatever_their_engine_is_called(settings, engine):
    settings.DATABASES = {**settings.DATABASES, "other": {"ENGINE": engine, "NAME": "jobs"}}
    settings.JOBS = {**settings.JOBS, "DATABASE": "other"}
    assert check_database_vendor() == []


@pytest.mark.parametrize("alias", ["jobs", "", "Default"])
def test_a_database_alias_that_databases_lacks_stops_check_naming_it(settings, alias):
    settings.JOBS = {**settings.JOBS, "DATABASE": alias}
    errors = check_jobs_settings()
    assert ids(errors) == ["jobs.E013"]
    assert f"JOBS['DATABASE'] (env JOBS_DATABASE) is {alias!r}" in errors[0].msg
    assert "'default'" in errors[0].msg  # the aliases there are
    assert check_database_vendor() == []  # said once, by E013
    with pytest.raises(SystemCheckError, match="jobs.E013"):
        call_command("check", databases=[])


def test_another_alias_of_databases_passes(settings):
    settings.JOBS = {**settings.JOBS, "DATABASE": "jobsdb"}
    assert check_jobs_settings() == [] and check_database_vendor() == []
