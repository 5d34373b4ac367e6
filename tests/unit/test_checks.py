import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from jobs.checks import check_cluster_settings


def ids(errors):
    return sorted(e.id for e in errors)


def test_shipped_settings_pass():
    assert check_cluster_settings() == []


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
        call_command("check")


def test_a_task_timeout_longer_than_django_q2s_is_caught(settings):
    from jobs.core.registry import _registry, task

    @task(name="tests.very_long", timeout=5000)
    def very_long():
        return None

    try:
        assert "jobs.E002" in ids(check_cluster_settings())
    finally:
        _registry.pop("tests.very_long")
