import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from jobs.models import DeadLetter, JobStatus
from jobs.ops import operations
from tests.factories import DeadLetterFactory, JobFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
S = JobStatus


def staff_with(*codenames):
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def test_requeue_reports_done_and_skipped():
    user = staff_with("requeue_job")
    dead = [JobFactory(status=S.DEAD) for _ in range(3)]
    running = JobFactory(status=S.RUNNING)
    report = operations.perform("requeue", user, [j.pk for j in dead] + [running.pk])
    assert report.message == "Requeued 3, skipped 1 that are not dead or cancelled."


def test_cancel_mentions_running_jobs_asked_to_stop():
    user = staff_with("cancel_job")
    jobs = [JobFactory(), JobFactory(status=S.RUNNING), JobFactory(status=S.SUCCEEDED)]
    report = operations.perform("cancel", user, [j.pk for j in jobs])
    assert report.message == ("Cancelled 1, asked 1 running to stop at their next safe point, "
                              "skipped 1 that had already finished.")


def test_resolve_by_job_records_who():
    user = staff_with("resolve_deadletter")
    letter = DeadLetterFactory()
    other = JobFactory(status=S.DEAD)
    report = operations.perform("resolve", user, [letter.job_id, other.pk], note="known outage")
    assert report.message == "Resolved 1, skipped 1 without an open dead letter."
    letter.refresh_from_db()
    assert letter.resolved_by == user and letter.note == "known outage"


@pytest.mark.parametrize("action", list(operations.ACTIONS))
def test_every_action_needs_its_permission(action):
    job = JobFactory(status=S.DEAD)
    for user in (UserFactory(), StaffFactory()):
        with pytest.raises(PermissionDenied):
            operations.perform(action, user, [job.pk])
        assert operations.available(user) == []
    job.refresh_from_db()
    assert job.status == S.DEAD and not DeadLetter.objects.filter(resolved_at__isnull=False)


def test_available_lists_only_permitted_actions():
    user = staff_with("cancel_job", "resume_job")
    assert [a.name for a in operations.available(user)] == ["resume", "cancel"]
