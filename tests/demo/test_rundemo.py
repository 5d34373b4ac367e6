import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from jobs.models import Job

pytestmark = pytest.mark.django_db


def test_rundemo_prepares_admin_and_demo_jobs_once(capsys):
    call_command("rundemo", "--no-server")
    out = capsys.readouterr().out
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and "password" in out
    assert Job.objects.count() == 8
    call_command("rundemo", "--no-server")
    assert Job.objects.count() == 8  # idempotency keys: a second run adds nothing
    from jobs.models import Schedule

    assert set(Schedule.objects.values_list("name", flat=True)) == {
        "jobs.purge_finished", "jobs.dead_letter_alert", "demo-every-minute"}
