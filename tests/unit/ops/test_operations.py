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


def test_an_action_on_one_job_is_logged_by_the_job_s_short_id_and_task():
    """A job page's Requeue button: the audit log and the operation's title name the job
    as the lists show it, not the id list or a filter."""
    from jobs.models import OperatorAction
    from jobs.models.ids import short_id
    from jobs.ops import audit

    job = DeadLetterFactory(job__task_name="reports.build").job
    operations.perform("requeue", staff_with("requeue_job"), [job.pk])
    row = OperatorAction.objects.get()
    assert audit.describe_target(row.target) == f"job {short_id(job.pk)} (reports.build)"
    # A selection of several is counted, as before.
    others = [JobFactory(status=JobStatus.DEAD) for _ in range(2)]
    operations.perform("requeue", staff_with("requeue_job"), [o.pk for o in others])
    assert audit.describe_target(OperatorAction.objects.latest("id").target) == \
        "2 selected jobs"


@pytest.mark.parametrize(("stored", "words"), [
    ({"task": "tests.add", "created_before": "2026-01-05T10:12:01.5+00:00"},
     "every job of task “tests.add”, enqueued before 2026-01-05 10:12:01"),
    ({"status": "dead", "queue": "emails", "cause": "ValueError: bad row", "letter": "open",
      "created_before": "2026-01-05T10:12:01+00:00"},
     "every dead job in queue “emails” that failed with “ValueError: bad row” with an "
     "unresolved dead letter, enqueued before 2026-01-05 10:12:01"),
    ({"q": "welcome:42", "args": {"user_id": 42}, "since": "2026-01-01T00:00:00+00:00"},
     'every job found by “welcome:42” created from 2026-01-01 00:00:00 with arguments '
     '{"user_id": 42}'),
    ({}, "every job"),
])
def test_an_every_match_operation_is_titled_in_words(stored, words):
    from jobs.ops import audit

    assert audit.describe_target({"filter": stored}) == words
