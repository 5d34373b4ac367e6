import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from jobs.models import Job, Schedule

pytestmark = pytest.mark.django_db


def test_rundemo_prepares_admin_and_demo_jobs_once(capsys):
    call_command("rundemo", "--no-server")
    out = capsys.readouterr().out
    admin = get_user_model().objects.get(username="admin")
    password = out.split("password ", 1)[1].split()[0]
    assert admin.is_superuser and admin.check_password(password)
    assert Job.objects.count() == 9
    assert Job.objects.filter(task_name="demo.rebuild_index").exists()  # to watch live
    call_command("rundemo", "--no-server")
    assert Job.objects.count() == 9  # idempotency keys: a second run adds nothing
    admin.refresh_from_db()
    assert admin.check_password(password)  # a second run keeps the password
    assert "unchanged since the first run" in capsys.readouterr().out

    assert set(Schedule.objects.values_list("name", flat=True)) == {
        "jobs.purge_finished", "jobs.dead_letter_alert", "demo-every-minute"}


def test_rundemo_prints_every_address_a_newcomer_needs(capsys):
    call_command("rundemo", "127.0.0.1:8123", "--no-server")
    out = capsys.readouterr().out
    for address in ("http://127.0.0.1:8123/\n", "http://127.0.0.1:8123/dashboard/",
                    "http://127.0.0.1:8123/admin/jobs/job/", "http://127.0.0.1:8123/healthz"):
        assert address in out
