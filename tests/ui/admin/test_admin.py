"""The admin as operators use it: bulk actions, permissions, search, filters, the
detail page, step limits, the home panel, and bounded queries on the changelist."""

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.admin.base import distinct_values
from jobs.models import (
    Attempt,
    AttemptStatus,
    DeadLetter,
    Job,
    JobStatus,
    OperatorAction,
    Step,
    StepStatus,
)
from jobs.ops import bulk, lookups, presentation
from jobs.ops.presentation import short_id
from tests.factories import AttemptFactory, DeadLetterFactory, JobFactory, StaffFactory

pytestmark = pytest.mark.django_db
S = JobStatus

JOBS = reverse("admin:jobs_job_changelist")
LETTERS = reverse("admin:jobs_deadletter_changelist")
ALL_OPERATIONS = ("requeue_job", "cancel_job", "resume_job", "resolve_deadletter")


def staff_with(*codenames):
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def operator(client):
    """A staff user with every operator permission, logged in."""
    user = staff_with("view_job", "view_deadletter", "view_attempt", "view_step",
                      "change_deadletter", *ALL_OPERATIONS)
    client.force_login(user)
    client.user = user
    return client


def act(client, action, objects, url=JOBS, **extra):
    data = {"action": action, "index": 0, "select_across": 0,
            "_selected_action": [str(o.pk) for o in objects], **extra}
    return client.post(url, data, follow=True)


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def statuses(jobs):
    return [Job.objects.get(pk=j.pk).status for j in jobs]


def action_choices(response):
    form = response.context["action_form"]  # None when the user has no action at all
    return [name for name, _ in form.fields["action"].choices if name] if form else []


# --- Bulk actions on mixed selections --------------------------------------------------------


class TestJobActions:
    def test_requeue_reports_done_and_skipped_and_keeps_history(self, operator):
        dead = [JobFactory(status=S.DEAD, attempt_count=3, last_attempt_number=3)
                for _ in range(2)]
        for job in dead:
            AttemptFactory(job=job, number=3, status=AttemptStatus.FAILED)
        cancelled = JobFactory(status=S.CANCELLED)
        running, succeeded = JobFactory(status=S.RUNNING), JobFactory(status=S.SUCCEEDED)

        response = act(operator, "requeue_selected",
                       [*dead, cancelled, running, succeeded])

        assert messages_of(response) == [
            "Requeued 3, skipped 2 that are not dead or cancelled."]
        assert statuses([*dead, cancelled]) == [S.QUEUED] * 3
        assert statuses([running, succeeded]) == [S.RUNNING, S.SUCCEEDED]
        fresh = Job.objects.get(pk=dead[0].pk)
        assert fresh.attempt_count == 0 and fresh.last_attempt_number == 3  # new cycle
        assert Attempt.objects.filter(job=dead[0]).count() == 1  # history kept

    def test_cancel_queued_stops_running_and_skips_finished(self, operator):
        queued, retrying = JobFactory(), JobFactory(status=S.RETRYING)
        running, succeeded = JobFactory(status=S.RUNNING), JobFactory(status=S.SUCCEEDED)

        response = act(operator, "cancel_selected", [queued, retrying, running, succeeded])

        assert messages_of(response) == [
            "Cancelled 2, asked 1 running to stop at their next safe point, "
            "skipped 1 that had already finished."]
        assert statuses([queued, retrying, running, succeeded]) == [
            S.CANCELLED, S.CANCELLED, S.RUNNING, S.SUCCEEDED]
        assert Job.objects.get(pk=running.pk).cancel_requested_at is not None

    def test_resume_keeps_succeeded_steps(self, operator):
        dead = JobFactory(status=S.DEAD)
        done = Step.objects.create(job=dead, position=1, name="download",
                                   status=StepStatus.SUCCEEDED, result={"rows": 3})
        failed = Step.objects.create(job=dead, position=2, name="load",
                                     status=StepStatus.FAILED, attempts=2)
        succeeded = JobFactory(status=S.SUCCEEDED)

        response = act(operator, "resume_selected", [dead, succeeded])

        assert messages_of(response) == [
            "Resumed 1, skipped 1 that are not dead, cancelled or waiting to retry."]
        assert statuses([dead, succeeded]) == [S.QUEUED, S.SUCCEEDED]
        done.refresh_from_db()
        failed.refresh_from_db()
        assert (done.status, done.result) == (StepStatus.SUCCEEDED, {"rows": 3})
        assert (failed.status, failed.attempts) == (StepStatus.PENDING, 0)

    def test_resolve_asks_for_a_note_then_records_who_when_and_why(self, operator):
        letter = DeadLetterFactory()
        without = JobFactory(status=S.DEAD)

        page = act(operator, "resolve_selected", [letter.job, without])
        assert page.status_code == 200
        html = page.content.decode()
        assert 'name="note"' in html and 'name="confirm" value="yes"' in html
        assert DeadLetter.objects.get().resolved_at is None  # nothing yet

        response = act(operator, "resolve_selected", [letter.job, without],
                       confirm="yes", note="payments API outage, fixed")

        assert messages_of(response) == ["Resolved 1, skipped 1 without an open dead letter."]
        letter.refresh_from_db()
        assert letter.resolved_by == operator.user
        assert letter.note == "payments API outage, fixed"
        assert timezone.now() - letter.resolved_at < timedelta(minutes=1)
        assert Job.objects.get(pk=letter.job_id).status == S.DEAD  # the job stays dead

    def test_the_note_page_caps_its_count_like_every_list(self, operator, monkeypatch):
        monkeypatch.setattr(lookups, "COUNT_CAP", 2)
        letters = [DeadLetterFactory() for _ in range(3)]
        page = act(operator, "resolve_selected", [letters[0].job],
                   url=f"{JOBS}?status__exact=dead", select_across=1)
        assert "each of more than 2 jobs" in page.content.decode()
        assert DeadLetter.objects.filter(resolved_at__isnull=True).count() == 3

    def test_resolve_without_a_note_records_who(self, operator):
        letter = DeadLetterFactory()
        act(operator, "resolve_selected", [letter.job], confirm="yes", note="")
        letter.refresh_from_db()
        assert letter.note == f"resolved from the admin by {operator.user}"

    def test_select_all_across_pages_runs_in_the_background_on_every_match(self, operator):
        dead = [JobFactory(status=S.DEAD, queue="emails") for _ in range(25)]
        others = [JobFactory(status=S.SUCCEEDED, queue="emails"),
                  JobFactory(status=S.DEAD, queue="default")]
        response = act(operator, "requeue_selected", dead[:2],
                       url=f"{JOBS}?status__exact=dead&queue=emails&o=1", select_across=1)
        row = OperatorAction.objects.get(action="requeue")
        assert response.redirect_chain[-1][0] == reverse("admin:jobs_operatoraction_change",
                                                         args=[row.pk])
        assert messages_of(response)[0].startswith("Started: Requeue (start over) on every")
        assert set(statuses(dead)) == {S.DEAD}  # nothing done inside the request
        assert row.target["filter"] | {"created_before": None} == {
            "status": "dead", "queue": "emails", "created_before": None}
        bulk.run(row.pk)  # what its job does
        assert set(statuses(dead)) == {S.QUEUED}
        assert statuses(others) == [S.SUCCEEDED, S.DEAD]
        page = operator.get(reverse("admin:jobs_operatoraction_change", args=[row.pk]))
        assert "Requeued 25, skipped 0." in page.content.decode()

    def test_select_all_with_a_filter_the_background_cannot_take_does_nothing(self, operator):
        dead = [JobFactory(status=S.DEAD) for _ in range(3)]
        response = act(operator, "requeue_selected", dead[:1],
                       url=f"{JOBS}?status__exact=dead&created=bogus", select_across=1)
        assert "Nothing was started" in messages_of(response)[0]
        assert set(statuses(dead)) == {S.DEAD} and not OperatorAction.objects.exists()

    def test_no_status_editing_anywhere(self, operator):
        job = JobFactory(status=S.DEAD)
        url = reverse("admin:jobs_job_change", args=[job.pk])
        html = operator.get(url).content.decode()
        assert 'name="status"' not in html and 'type="submit" value="Save"' not in html
        assert operator.post(url, {"status": "succeeded"}).status_code == 403
        assert Job.objects.get(pk=job.pk).status == S.DEAD
        assert operator.get(reverse("admin:jobs_job_add")).status_code == 403
        assert operator.get(reverse("admin:jobs_job_delete", args=[job.pk])).status_code == 403


class TestDeadLetterAdmin:
    def test_resolve_skips_letters_already_resolved(self, operator):
        open_letter = DeadLetterFactory()
        old = DeadLetterFactory(resolved_at=timezone.now(), note="earlier")

        act(operator, "resolve_selected", [open_letter, old], url=LETTERS)  # the note page
        response = act(operator, "resolve_selected", [open_letter, old], url=LETTERS,
                       confirm="yes", note="known outage")

        assert messages_of(response) == ["Resolved 1, skipped 1 without an open dead letter."]
        open_letter.refresh_from_db()
        old.refresh_from_db()
        assert (open_letter.note, open_letter.resolved_by) == ("known outage", operator.user)
        assert old.note == "earlier"

    def test_requeue_the_jobs_of_letters(self, operator):
        letter = DeadLetterFactory()
        requeued_already = DeadLetterFactory(job=JobFactory(status=S.QUEUED),
                                             resolved_at=timezone.now())
        response = act(operator, "requeue_selected", [letter, requeued_already], url=LETTERS)
        assert messages_of(response) == [
            "Requeued 1, skipped 1 that are not dead or cancelled."]
        assert Job.objects.get(pk=letter.job_id).status == S.QUEUED
        letter.refresh_from_db()
        assert letter.resolved_at is not None  # requeue resolves the open letter

    def test_unresolved_first_with_the_final_error_and_filters(self, operator):
        now = timezone.now()
        resolved = DeadLetterFactory(resolved_at=now, failed_at=now - timedelta(minutes=1),
                                     error_message="resolved one")
        old_open = DeadLetterFactory(failed_at=now - timedelta(days=9),
                                     error_message="old <b>open</b>")
        new_open = DeadLetterFactory(failed_at=now - timedelta(minutes=5),
                                     job=JobFactory(status=S.DEAD, task_name="tests.noop"))
        page = operator.get(LETTERS)
        assert list(page.context["cl"].result_list) == [new_open, old_open, resolved]
        assert "RuntimeError: old &lt;b&gt;open&lt;/b&gt;" in page.content.decode()

        def listed(query):
            return set(operator.get(LETTERS + query).context["cl"].result_list)

        assert listed("?resolved=no") == {new_open, old_open}
        assert listed("?resolved=yes") == {resolved}
        assert listed("?task=tests.noop") == {new_open}
        assert listed("?failed=24h") == {new_open, resolved}
        assert listed("?failed=older") == {old_open}


# --- Permissions -------------------------------------------------------------------------------


ACTIONS = [("requeue_selected", "requeue_job", S.DEAD),
           ("resume_selected", "resume_job", S.DEAD),
           ("cancel_selected", "cancel_job", S.QUEUED),
           ("resolve_selected", "resolve_deadletter", S.DEAD)]


class TestPermissions:
    def test_staff_without_operator_permissions_sees_no_action(self, client):
        client.force_login(staff_with("view_job"))
        JobFactory()
        assert action_choices(client.get(JOBS)) == []

    @pytest.mark.parametrize(("action", "codename", "status"), ACTIONS)
    def test_each_action_shows_only_with_its_permission(self, client, action, codename,
                                                        status):
        client.force_login(staff_with("view_job", codename))
        JobFactory()
        assert action_choices(client.get(JOBS)) == [action]

    @pytest.mark.parametrize(("action", "codename", "status"), ACTIONS)
    def test_a_forged_post_is_refused_and_changes_nothing(self, client, action, codename,
                                                          status):
        others = [c for _, c, _ in ACTIONS if c != codename]
        client.force_login(staff_with("view_job", *others))
        letter = DeadLetterFactory(job=JobFactory(status=status))
        response = act(client, action, [letter.job], confirm="yes", note="forged")
        assert response.status_code == 403
        assert Job.objects.get(pk=letter.job_id).status == status
        assert DeadLetter.objects.get().resolved_at is None

    def test_forged_dead_letter_actions_are_refused(self, client):
        client.force_login(staff_with("view_deadletter"))
        letter = DeadLetterFactory()
        for action in ("resolve_selected", "requeue_selected"):
            assert act(client, action, [letter], url=LETTERS,
                       confirm="yes").status_code == 403
        letter.refresh_from_db()
        assert letter.resolved_at is None and letter.job.status == S.DEAD


# --- Scale: bounded queries, exact-match search, indexed filters ---------------------------------


def make_page_of_jobs(n):
    now = timezone.now()
    someone, resolver = StaffFactory(), StaffFactory()
    for i in range(n):
        job = JobFactory(status=[S.DEAD, S.SUCCEEDED, S.RUNNING][i % 3],
                         queue=["default", "emails"][i % 2], last_error="boom " * 40,
                         started_at=now, finished_at=now + timedelta(seconds=i),
                         enqueued_by=someone if i % 10 == 0 else None)
        AttemptFactory(job=job, number=1, status=AttemptStatus.FAILED)
        Step.objects.create(job=job, position=1, name="only")
        # Every job has a letter: open for dead jobs, resolved (history) for the rest.
        DeadLetterFactory(job=job, resolved_at=None if job.status == S.DEAD else now,
                          resolved_by=resolver if i % 5 == 0 else None)


@pytest.mark.parametrize(("url", "model"), [(JOBS, Job), (LETTERS, DeadLetter),
                                             (reverse("admin:jobs_attempt_changelist"),
                                              Attempt),
                                             (reverse("admin:jobs_step_changelist"), Step)])
def test_changelist_queries_do_not_grow_with_the_page_size(operator, monkeypatch,
                                                           django_assert_max_num_queries,
                                                           url, model):
    make_page_of_jobs(120)
    model_admin = admin.site._registry[model]
    counts = {}
    for per_page in (10, 100):
        monkeypatch.setattr(model_admin, "list_per_page", per_page)
        with CaptureQueriesContext(connection) as queries:
            response = operator.get(url)
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == per_page
        counts[per_page] = len(queries)
        with django_assert_max_num_queries(12):
            operator.get(url)
    assert counts[10] == counts[100]


def test_the_engine_s_own_jobs_are_left_out_of_the_list_unless_shown_or_named(operator):
    """The dashboard's rule (jobs.ops.search.hide_engine_jobs), as an admin filter."""
    mine, engine = JobFactory(), JobFactory(task_name=bulk.TASK)

    def shown(**params):
        return set(operator.get(JOBS, params).context["cl"].result_list)

    assert shown() == {mine}
    page = operator.get(JOBS).content.decode()
    assert "engine&#x27;s own jobs" in page and 'href="?engine=1"' in page  # the switch
    assert shown(engine="1") == {mine, engine}
    assert shown(task=bulk.TASK) == {engine}
    assert shown(q=bulk.TASK) == {engine}  # the search matches task names exactly
    assert shown(q=short_id(engine.pk)) == {engine}


class TestSearch:
    def find(self, client, term):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(JOBS, {"q": term})
        sql = " ".join(q["sql"] for q in queries).upper()
        assert " LIKE " not in sql and "UPPER(" not in sql  # no scan of a million rows
        return set(response.context["cl"].result_list)

    def test_by_id_full_or_prefix_or_several(self, operator):
        a, b, _ = JobFactory(), JobFactory(), JobFactory()
        assert self.find(operator, str(a.pk)) == {a}
        assert self.find(operator, f"  {a.pk.hex} ") == {a}
        assert self.find(operator, str(a.pk)[:8]) >= {a}  # a prefix: the clock, a minute of jobs
        assert self.find(operator, short_id(a.pk)) == {a}  # what the list shows
        assert self.find(operator, f"{a.pk}, {b.pk}") == {a, b}

    def test_a_prefix_is_a_range_on_the_id_index(self, operator):
        """The rule is lookups.id_search's, the dashboard's too: 8+ hex digits
        match exactly the ids that start with them; fewer match nothing."""
        inside = [JobFactory(id=uuid.UUID("1234abcd-0000-4000-8000-000000000000")),
                  JobFactory(id=uuid.UUID("1234abcd-ffff-4fff-bfff-ffffffffffff"))]
        below = JobFactory(id=uuid.UUID("1234abcc-ffff-4fff-bfff-ffffffffffff"))
        above = JobFactory(id=uuid.UUID("1234abce-0000-4000-8000-000000000000"))
        assert self.find(operator, "1234abcd") == set(inside)
        assert self.find(operator, "1234ABCD-0") == {inside[0]}  # dashes and case as shown
        assert self.find(operator, "1234abc") == set()  # 7 digits: too short to search
        assert self.find(operator, "1234abcc") == {below}
        assert self.find(operator, "1234abce") == {above}

    def test_by_idempotency_key_or_task_name_exactly(self, operator):
        keyed = JobFactory(idempotency_key="welcome:42", task_name="tests.noop")
        other = JobFactory(task_name="tests.add")
        assert self.find(operator, "welcome:42") == {keyed}
        assert self.find(operator, "tests.add") == {other}
        assert self.find(operator, "welcome") == set()  # exact, not a substring
        assert self.find(operator, "tests") == set()

    def test_the_other_lists_search_by_their_job_id(self, operator):
        job = JobFactory(status=S.DEAD)
        attempt = AttemptFactory(job=job, status=AttemptStatus.FAILED)
        AttemptFactory()  # another job's
        url = reverse("admin:jobs_attempt_changelist")
        listed = operator.get(url, {"q": short_id(job.pk)}).context["cl"].result_list
        assert list(listed) == [attempt]


class TestFilters:
    def listed(self, client, query):
        return set(client.get(JOBS + query).context["cl"].result_list)

    def test_status_queue_task_and_time_range(self, operator):
        now = timezone.now()
        fresh = JobFactory(status=S.DEAD, queue="emails", task_name="tests.noop")
        day_old = JobFactory(created_at=now - timedelta(hours=5))
        week_old = JobFactory(created_at=now - timedelta(days=3), queue="emails")
        ancient = JobFactory(created_at=now - timedelta(days=30))

        assert self.listed(operator, "?status__exact=dead") == {fresh}
        assert self.listed(operator, "?queue=emails") == {fresh, week_old}
        assert self.listed(operator, "?task=tests.noop") == {fresh}
        assert self.listed(operator, "?created=15m") == {fresh}
        assert self.listed(operator, "?created=1h") == {fresh}
        assert self.listed(operator, "?created=24h") == {fresh, day_old}
        assert self.listed(operator, "?created=7d") == {fresh, day_old, week_old}
        assert self.listed(operator, "") == {fresh, day_old, week_old, ancient}
        assert self.listed(operator, "?queue=emails&status__exact=queued") == {week_old}

    def test_filter_choices_come_from_the_index(self, operator):
        JobFactory(queue="emails")
        JobFactory(queue="default")
        JobFactory(queue="emails")
        assert distinct_values(Job, "queue") == ["default", "emails"]
        html = operator.get(JOBS).content.decode()
        assert "?queue=emails" in html
        # The same windows as the dashboard's "Created" filter.
        for time_range in lookups.TIME_RANGES.values():
            assert f"?created={time_range.key}" in html and time_range.label in html


class TestPaginator:
    """The count cap is lookups.COUNT_CAP, the dashboard's too."""

    @pytest.mark.parametrize(("rows", "capped", "text"), [(5, False, "5"),
                                                         (6, True, "more than 5")])
    def test_filtered_counts_stop_at_the_cap(self, operator, monkeypatch, rows, capped, text):
        monkeypatch.setattr(lookups, "COUNT_CAP", 5)
        for _ in range(rows):
            JobFactory(status=S.DEAD)
        response = operator.get(JOBS + "?status__exact=dead")
        paginator = response.context["cl"].paginator
        assert (paginator.is_capped, paginator.count, paginator.count_text) == (capped, 5, text)
        html = " ".join(response.content.decode().split())
        assert f'<p class="paginator"> {text} jobs </p>' in html
        assert f"{text} results" in html  # next to the search box

    def test_pages_stop_at_the_cap(self, operator, monkeypatch):
        """No OFFSET of a million rows: deep pages are out of reach, filters are not."""
        monkeypatch.setattr(lookups, "COUNT_CAP", 4)
        monkeypatch.setattr(admin.site._registry[Job], "list_per_page", 2)
        for _ in range(9):
            JobFactory()
        assert operator.get(JOBS + "?p=2").context["cl"].paginator.num_pages == 2
        assert operator.get(JOBS + "?p=3").status_code == 302  # Django's "?e=1" redirect

    def test_exact_below_the_cap(self, operator):
        for _ in range(3):
            JobFactory()
        response = operator.get(JOBS)
        assert response.context["cl"].result_count == 3
        assert not response.context["cl"].paginator.is_capped

    @pytest.mark.postgres_only
    def test_unfiltered_uses_the_planner_estimate_on_postgres(self, operator, monkeypatch):
        monkeypatch.setattr(lookups, "COUNT_CAP", 5)
        for _ in range(20):
            JobFactory()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE jobs_job")
        response = operator.get(JOBS)
        assert response.context["cl"].paginator.is_estimate
        assert response.context["cl"].result_count == 20
        assert "about 20" in response.content.decode()


# --- Detail pages ----------------------------------------------------------------------------


def test_detail_shows_steps_and_attempts_escaped(operator):
    evil = "<script>alert('x')</script>"
    job = JobFactory(status=S.DEAD, args=[evil], kwargs={"note": evil},
                     result={"html": evil}, last_error=f"RuntimeError: {evil}")
    step = Step.objects.create(job=job, position=1, name="transform",
                               status=StepStatus.FAILED, limits={"max_rows": 5000},
                               error_class="LimitExceeded", error_message=evil)
    AttemptFactory(job=job, number=1, status=AttemptStatus.FAILED, error_class="RuntimeError",
                   error_message=evil, traceback=f"Traceback ...\nRuntimeError: {evil}")
    AttemptFactory(job=job, number=2, status=AttemptStatus.TIMED_OUT,
                   error_class="TimeoutError", error_message="took too long")

    html = operator.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<details><summary><code>RuntimeError: &lt;script&gt;" in html  # folded traceback
    assert "TimeoutError: took too long" in html
    # Statuses as presentation draws them, the dashboard's way: words beside the colour.
    assert presentation.status_dot(AttemptStatus.TIMED_OUT, "attempt") in html
    assert '<span class="status-label">Timed out</span>' in html
    assert presentation.status_dot(StepStatus.FAILED, "step") in html
    assert presentation.status_dot(S.DEAD) in html
    assert reverse("admin:jobs_step_change", args=[step.pk]) in html  # to edit limits
    assert "&quot;max_rows&quot;: 5000" in html
    assert '"note": "&lt;script&gt;' in html.replace("&quot;", '"')  # pretty JSON


def test_attempt_and_step_pages_are_read_only(operator):
    attempt = AttemptFactory(status=AttemptStatus.FAILED, error_message="<i>x</i>")
    url = reverse("admin:jobs_attempt_change", args=[attempt.pk])
    html = operator.get(url).content.decode()
    assert "&lt;i&gt;x&lt;/i&gt;" in html and 'name="status"' not in html
    assert operator.post(url, {"status": "succeeded"}).status_code == 403
    assert operator.get(reverse("admin:jobs_attempt_changelist")).status_code == 200


class TestStepLimits:
    def step(self, **fields):
        return Step.objects.create(job=JobFactory(status=S.DEAD), position=1, name="transform",
                                   status=StepStatus.FAILED, limits={"max_rows": 5000},
                                   **fields)

    def url(self, step):
        return reverse("admin:jobs_step_change", args=[step.pk])

    def test_raise_a_declared_limit(self, operator):
        step = self.step()
        page = operator.get(self.url(step)).content.decode()
        assert 'name="limits"' in page and 'name="status"' not in page
        response = operator.post(self.url(step), {"limits": json.dumps({"max_rows": 9000})})
        assert response.status_code == 302
        step.refresh_from_db()
        assert step.limits == {"max_rows": 9000} and step.status == StepStatus.FAILED

    @pytest.mark.parametrize(("proposed", "error"), [
        ({"max_rowz": 9000}, "Unknown limit(s) [&#x27;max_rowz&#x27;]"),
        ({"max_rows": "lots"}, "must be of type int"),
        ({"max_rows": -1}, "must be positive"),
        ([1, 2], "must be a JSON object"),
    ])
    def test_invalid_limits_are_refused_on_the_field(self, operator, proposed, error):
        step = self.step()
        response = operator.post(self.url(step), {"limits": json.dumps(proposed)})
        assert response.status_code == 200
        assert "limits" in response.context["adminform"].form.errors
        assert error in response.content.decode()
        step.refresh_from_db()
        assert step.limits == {"max_rows": 5000}

    def test_invalid_json_is_a_form_error_not_a_500(self, operator):
        step = self.step()
        response = operator.post(self.url(step), {"limits": '{"max_rows": 9000'})
        assert response.status_code == 200
        [error] = response.context["adminform"].form.errors["limits"]
        assert error.startswith("Not valid JSON:")  # the dashboard's words too
        step.refresh_from_db()
        assert step.limits == {"max_rows": 5000}

    def test_the_save_itself_checks_the_permission(self, client, monkeypatch):
        """The admin saves through operations.save_step_limits, which refuses a user
        without jobs.resume_job even if the page had let the form through."""
        monkeypatch.setattr(admin.site._registry[Step], "has_change_permission",
                            lambda request, obj=None: True)
        client.force_login(staff_with("view_step", "change_step"))
        step = self.step()
        response = client.post(self.url(step), {"limits": json.dumps({"max_rows": 9000})})
        assert response.status_code == 403
        step.refresh_from_db()
        assert step.limits == {"max_rows": 5000}

    def test_changing_limits_needs_the_resume_permission(self, client):
        client.force_login(staff_with("view_step", "change_step"))
        step = self.step()
        page = client.get(self.url(step)).content.decode()
        assert 'name="limits"' not in page  # view only
        response = client.post(self.url(step), {"limits": json.dumps({"max_rows": 9000})})
        assert response.status_code == 403
        step.refresh_from_db()
        assert step.limits == {"max_rows": 5000}


# --- Admin home ------------------------------------------------------------------------------


class TestAdminHome:
    def test_counts_per_status_oldest_queued_and_unresolved(self, operator):
        for status, n in [(S.QUEUED, 2), (S.RUNNING, 1), (S.SUCCEEDED, 4), (S.DEAD, 3)]:
            for _ in range(n):
                JobFactory(status=status, run_after=timezone.now() - timedelta(minutes=20))
        DeadLetterFactory.create_batch(2)  # two more dead jobs, with open letters

        for url in (reverse("admin:index"), reverse("admin:app_list", args=["jobs"])):
            html = operator.get(url).content.decode()
            assert 'id="job-stats"' in html
            counts = {label: n for label, n in zip(
                [s.label for s in JobStatus],
                [int(x.split("</strong>")[0]) for x in
                 html.split('class="job-stat-count">')[1:]], strict=True)}
            assert counts == {"Queued": 2, "Running": 1, "Waiting to retry": 0,
                              "Succeeded": 4, "Dead": 5, "Cancelled": 0}
            assert 'id="job-stats-unresolved">2<' in html
            assert 'id="job-stats-oldest">20 min<' in html
            assert f"{JOBS}?status__exact=dead" in html

    def test_not_on_other_apps(self, admin_client):
        html = admin_client.get(reverse("admin:app_list", args=["auth"])).content.decode()
        assert 'id="job-stats"' not in html

    def test_not_for_users_who_cannot_see_jobs(self, client):
        client.force_login(staff_with("view_schedule"))
        html = client.get(reverse("admin:index")).content.decode()
        assert 'id="job-stats"' not in html
