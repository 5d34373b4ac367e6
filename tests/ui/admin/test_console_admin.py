"""The admin's share of the console: fix a dead job from its own page, land back on the job
after saving a step's limits, read the audit log, and no empty django-q2 section."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django_q import models as q_models

from jobs.models import DeadLetter, Job, JobStatus, OperatorAction, Step
from jobs.models.ids import short_id
from jobs.ops import operations
from tests.factories import DeadLetterFactory, StaffFactory
from tests.ui.dashboard.factories import staff_with

pytestmark = pytest.mark.django_db
S = JobStatus


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_dead_jobs_page_offers_its_own_actions_and_one_click_fixes_it():
    job = DeadLetterFactory().job
    client = client_for(staff_with("view_job", "requeue_job", "resume_job"))
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert 'data-action="requeue"' in page and 'data-action="resume"' in page
    assert 'data-action="cancel"' not in page  # no permission, no button
    response = client.post(reverse("admin:jobs_job_act", args=[job.pk, "resume"]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:jobs_job_change", args=[job.pk])
    assert Job.objects.get(pk=job.pk).status == S.QUEUED
    assert OperatorAction.objects.get().action == "resume"


def test_the_job_page_action_checks_its_permission_and_method():
    job = DeadLetterFactory().job
    client = client_for(staff_with("view_job"))
    assert client.post(reverse("admin:jobs_job_act", args=[job.pk, "requeue"])).status_code \
        == 403
    assert client.get(reverse("admin:jobs_job_act", args=[job.pk, "requeue"])).status_code \
        == 405
    assert client.post(reverse("admin:jobs_job_act", args=[job.pk, "explode"])).status_code \
        == 404
    assert Job.objects.get(pk=job.pk).status == S.DEAD


def test_resolving_from_the_job_page_keeps_the_note():
    job = DeadLetterFactory().job
    client = client_for(staff_with("view_job", "resolve_deadletter"))
    client.post(reverse("admin:jobs_job_act", args=[job.pk, "resolve"]), {"note": "refunded"})
    assert DeadLetter.objects.get(job=job).note == "refunded"


def test_saving_a_steps_limits_lands_on_its_job():
    job = DeadLetterFactory().job
    step = Step.objects.create(job=job, position=1, name="transform", limits={"max_rows": 10})
    # The step's page shows its result and error: job data, so jobs.view_job too.
    client = client_for(staff_with("view_job", "view_step", "change_step", "resume_job"))
    response = client.post(reverse("admin:jobs_step_change", args=[step.pk]),
                           {"limits": '{"max_rows": 500}'})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:jobs_job_change", args=[job.pk])
    assert Step.objects.get(pk=step.pk).limits == {"max_rows": 500}


def test_the_audit_log_is_in_the_admin_read_only():
    user = staff_with("requeue_job", "view_operatoraction")
    job = DeadLetterFactory().job
    operations.perform("requeue", user, [job.pk])
    client = client_for(user)
    page = client.get(reverse("admin:jobs_operatoraction_changelist")).content.decode()
    assert "Requeue (start over)" in page and f"job {short_id(job.pk)} (tests.add)" in page
    assert "Requeued 1, skipped 0." in page
    entry = OperatorAction.objects.get()
    assert client.post(reverse("admin:jobs_operatoraction_change", args=[entry.pk]),
                       {"note": "edited"}).status_code == 403


def test_django_q2s_own_empty_admin_is_hidden():
    for model in (q_models.Failure, q_models.OrmQ, q_models.Schedule, q_models.Success):
        assert not admin.site.is_registered(model)
    index = client_for(StaffFactory(is_superuser=True)).get(reverse("admin:index"))
    assert "Successful tasks" not in index.content.decode()
