"""The project's own settings: a 500 leaves a traceback, the dev key never serves."""

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.urls import path

from demo.checks import check_secret_key
from tests.framework import admins


def boom(request):
    raise RuntimeError("an unexpected failure")


urlpatterns = [path("boom/", boom)]


@pytest.mark.urls("tests.demo.test_project_settings")
def test_a_500_reaches_the_console_with_its_traceback_and_mails_the_admins(
    client, settings, monkeypatch, mailoutbox
):
    settings.ADMINS = admins("Ops", "ops@example.com")
    console = next(h for h in logging.getLogger("django.request").handlers
                   if type(h) is logging.StreamHandler)
    emitted: list[logging.LogRecord] = []
    monkeypatch.setattr(console, "emit", emitted.append)
    client.raise_request_exception = False
    assert client.get("/boom/").status_code == 500
    (record,) = emitted
    assert record.exc_info and record.exc_info[0] is RuntimeError
    assert "Internal Server Error: /boom/" in record.getMessage()
    (mail,) = mailoutbox
    assert mail.to == ["ops@example.com"] and "an unexpected failure" in mail.body


def test_the_development_key_is_refused_at_deploy_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.DEVELOPMENT_SECRET_KEY
    assert [e.id for e in check_secret_key()] == ["demo.E001"]
    with pytest.raises(SystemCheckError, match="demo.E001"):
        call_command("check", deploy=True, fail_level="ERROR")
    with override_settings(SECRET_KEY="a-real-secret-" + "x" * 50):
        assert check_secret_key() == []


def test_the_front_page_says_where_everything_is(client):
    """`/` in the demo: a newcomer finds the dashboard, the admin, health and metrics from
    it, and how to enqueue a job; it is open to anyone and shows no job."""
    from django.urls import reverse

    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("dashboard:overview", "admin:jobs_job_changelist", "healthz", "metrics"):
        assert f'href="{reverse(name)}"' in html, name
    assert "enqueue(" in html and "make run" in html
    assert client.post("/").status_code == 405
