"""The dashboard's pages through Django's test client: access, CSRF, filters, pagination,
actions, step limits, polling, escaping and query counts."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.queries import Cursor
from jobs.models import AttemptStatus, DeadLetter, Job, JobStatus, Step, StepStatus
from jobs.ops import lookups, presentation
from tests.factories import (
    AttemptFactory,
    DeadLetterFactory,
    JobFactory,
    StaffFactory,
    UserFactory,
)
from tests.ui.dashboard.factories import StepFactory, staff_with

pytestmark = pytest.mark.django_db
S = JobStatus
LIST = reverse("dashboard:jobs")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_urls(job):
    return [reverse("dashboard:overview"), LIST, reverse("dashboard:job", args=[job.pk]),
            reverse("dashboard:job-live", args=[job.pk])]


# --- Access ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_admin_login():
    job = JobFactory()
    for url in page_urls(job):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login") + "?next=")
    response = Client().post(reverse("dashboard:action", args=["requeue"]), {"ids": [job.pk]})
    assert response.status_code == 302


def test_an_expired_session_under_htmx_redirects_the_whole_page(htmx_headers):
    response = Client().get(LIST, headers=htmx_headers)
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("admin:login"))


def test_non_staff_users_are_refused():
    job = JobFactory()
    client = client_for(UserFactory())
    for url in page_urls(job):
        assert client.get(url).status_code == 403


def test_staff_without_permissions_see_no_action_and_a_forged_post_is_refused():
    job = JobFactory(status=S.DEAD)
    DeadLetterFactory(job=job)
    client = client_for(StaffFactory())
    for url in (LIST, reverse("dashboard:job", args=[job.pk])):
        html = client.get(url).content.decode()
        assert "data-action=" not in html
    for action in ("requeue", "resume", "cancel", "resolve"):
        response = client.post(reverse("dashboard:action", args=[action]),
                               {"ids": [job.pk], "confirmed": "1"})
        assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == S.DEAD
    assert DeadLetter.objects.get(job=job).resolved_at is None


def test_only_the_permitted_actions_are_offered():
    JobFactory(status=S.DEAD)
    html = client_for(staff_with("view_job", "requeue_job")).get(LIST).content.decode()
    assert 'data-action="requeue"' in html
    assert 'data-action="cancel"' not in html and 'data-action="resume"' not in html


def test_an_unknown_action_is_404(ops_client):
    response = ops_client.post(reverse("dashboard:action", args=["explode"]), {"ids": []})
    assert response.status_code == 404


def test_posts_without_a_csrf_token_are_refused(ops):
    job = JobFactory(status=S.DEAD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)
    url = reverse("dashboard:action", args=["requeue"])
    assert client.post(url, {"ids": [job.pk], "confirmed": "1"}).status_code == 403
    job.refresh_from_db()
    assert job.status == S.DEAD
    # The page hands the token to htmx (hx-headers on <body>); with it the post goes through.
    html = client.get(LIST).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"ids": [job.pk], "confirmed": "1"},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == S.QUEUED


def test_step_limit_edits_need_a_csrf_token(ops):
    step = StepFactory(limits={"max_rows": 10})
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)
    url = reverse("dashboard:step-limits", args=[step.job_id, step.pk])
    assert client.post(url, {"limits": '{"max_rows": 20}'}).status_code == 403
    step.refresh_from_db()
    assert step.limits == {"max_rows": 10}


# --- Filters and pagination -----------------------------------------------------------


def listed(response) -> list[str]:
    return [str(j.pk) for j in response.context["page"].jobs]


def test_filters_by_status_queue_task_time_and_search(ops_client):
    now = timezone.now()
    dead = JobFactory(status=S.DEAD, queue="emails", task_name="demo.add",
                      created_at=now - timedelta(minutes=5))
    old = JobFactory(status=S.DEAD, queue="emails", task_name="demo.add",
                     created_at=now - timedelta(days=2))
    keyed = JobFactory(idempotency_key="welcome:42", task_name="demo.build_report")
    JobFactory(status=S.SUCCEEDED)
    earlier = JobFactory(created_at=now - timedelta(minutes=20))

    assert set(listed(ops_client.get(LIST, {"status": "dead"}))) == {str(dead.pk), str(old.pk)}
    assert set(listed(ops_client.get(LIST, {"queue": "emails", "last": "1h"}))) == {str(dead.pk)}
    assert str(earlier.pk) in listed(ops_client.get(LIST, {"last": "1h"}))
    last_15 = listed(ops_client.get(LIST, {"last": "15m"}))
    assert str(dead.pk) in last_15 and str(earlier.pk) not in last_15
    assert listed(ops_client.get(LIST, {"task": "demo.build_report"})) == [str(keyed.pk)]
    since = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    until = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert listed(ops_client.get(LIST, {"since": since, "until": until})) == [str(old.pk)]
    assert listed(ops_client.get(LIST, {"q": "welcome:42"})) == [str(keyed.pk)]
    assert listed(ops_client.get(LIST, {"q": str(dead.pk)})) == [str(dead.pk)]
    assert listed(ops_client.get(LIST, {"q": "no-such-key"})) == []


def test_the_engine_s_own_jobs_are_left_out_unless_shown_or_named(ops_client):
    """An operation's job (jobs.bulk_action) is not the project's work: the list leaves it
    out, the "Engine's own jobs" box shows it, and a task filter or its id finds it."""
    mine, engine = JobFactory(), JobFactory(task_name="jobs.bulk_action")
    assert listed(ops_client.get(LIST)) == [str(mine.pk)]
    page = ops_client.get(LIST)
    assert 'name="engine"' in page.content.decode()  # the box to tick
    assert listed(ops_client.get(LIST, {"engine": "on"})) == [str(engine.pk), str(mine.pk)]
    assert listed(ops_client.get(LIST, {"task": "jobs.bulk_action"})) == [str(engine.pk)]
    assert listed(ops_client.get(LIST, {"q": str(engine.pk)})) == [str(engine.pk)]
    # Its next-page links keep it.
    assert "engine=on" in ops_client.get(LIST, {"engine": "on", "size": 25}).context[
        "next_query"]


def test_search_finds_ids_the_way_the_admin_does(ops_client):
    """lookups.id_search: whole ids (several at once) or one 8+ digit prefix as
    a range on the primary key; an idempotency key still matches exactly."""
    inside = [JobFactory(id=uuid.UUID("1234abcd-0000-4000-8000-000000000000")),
              JobFactory(id=uuid.UUID("1234abcd-ffff-4fff-bfff-ffffffffffff"))]
    below = JobFactory(id=uuid.UUID("1234abcc-ffff-4fff-bfff-ffffffffffff"),
                       idempotency_key="1234abce")
    above = JobFactory(id=uuid.UUID("1234abce-0000-4000-8000-000000000000"))

    def found(q):
        response = ops_client.get(LIST, {"q": q})
        assert response.status_code == 200
        return set(listed(response))

    assert found("1234abcd") == {str(j.pk) for j in inside}
    assert found(" 1234ABCD-0 ") == {str(inside[0].pk)}
    assert found(f"{below.pk}, {above.pk}") == {str(below.pk), str(above.pk)}
    assert found(f"{below.pk} {above.pk.hex}") == {str(below.pk), str(above.pk)}
    # A key that looks like a prefix matches both ways: its own job and the id range.
    assert found("1234abce") == {str(below.pk), str(above.pk)}
    assert found("1234abc") == set()  # 7 digits: too short, and no such key
    assert found("1234abcz") == set()  # not hex


@pytest.mark.parametrize("params, message", [
    ({"status": "exploded"}, "Select a valid choice"),
    ({"since": "yesterday-ish"}, "Enter a valid date/time"),
    ({"until": "2025-13-45T99:99"}, "Enter a valid date/time"),
    ({"since": "2025-01-02T00:00", "until": "2025-01-01T00:00"}, "must be later than"),
    ({"after": "not-a-cursor"}, "page link is malformed"),
    ({"after": "1700000000000000_not-hex"}, "page link is malformed"),
    ({"after": "99999999999999999999999_" + "0" * 32}, "page link is malformed"),
    ({"size": "1000000"}, "Select a valid choice"),
    ({"last": "forever"}, "Select a valid choice"),
])
def test_malformed_filters_are_a_clear_400(ops_client, htmx_headers, params, message):
    for headers in ({}, htmx_headers):
        response = ops_client.get(LIST, params, headers=headers)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert 'role="alert"' in response.content.decode()


def test_keyset_pages_cover_every_job_once_in_a_stable_order(ops_client):
    now = timezone.now()
    # Ties on created_at (bulk imports) must be broken by id, or rows repeat or vanish.
    jobs = [JobFactory(created_at=now - timedelta(seconds=i // 4)) for i in range(60)]
    expected = [str(j.pk) for j in sorted(jobs, key=lambda j: (j.created_at, j.pk),
                                          reverse=True)]
    seen: list[str] = []
    params = {"size": "25"}
    while True:
        response = ops_client.get(LIST, params)
        assert response.status_code == 200
        seen += listed(response)
        cursor = response.context["page"].next_cursor
        if cursor is None:
            break
        assert f"after={cursor}" in response.content.decode()
        params = {"size": "25", "after": cursor}
    assert seen == expected  # no overlap, nothing missing, same order as one big page
    # A job created after page 1 was read does not shift page 2 (no OFFSET).
    first = ops_client.get(LIST, {"size": "25"})
    JobFactory(created_at=now + timedelta(seconds=1))
    second = ops_client.get(LIST, {"size": "25", "after": first.context["page"].next_cursor})
    assert listed(second) == expected[25:50]


def test_cursor_round_trips_exactly():
    job = JobFactory()
    cursor = Cursor(job.created_at, job.pk)
    assert Cursor.decode(cursor.encode()) == cursor


def test_the_count_is_capped_and_says_so(ops_client, monkeypatch):
    """The cap is lookups.COUNT_CAP, the admin's too; the text says so the same way."""
    monkeypatch.setattr(lookups, "COUNT_CAP", 5)
    Job.objects.bulk_create([Job(task_name="demo.add") for _ in range(5)])
    response = ops_client.get(LIST, {"size": "25"})
    assert response.context["page"].count == lookups.CappedCount(5, False, 5)
    assert "<strong>5</strong> matching jobs" in response.content.decode()
    JobFactory(task_name="demo.add")  # one more than the cap
    response = ops_client.get(LIST, {"size": "25"})
    assert response.context["page"].count == lookups.CappedCount(5, True, 5)
    assert "<strong>more than 5</strong> matching jobs" in response.content.decode()
    assert len(response.context["page"].jobs) == 6  # the cap limits the count, not the list


def test_the_created_filter_offers_the_shared_time_ranges(ops_client):
    html = ops_client.get(LIST).content.decode()
    for time_range in lookups.TIME_RANGES.values():
        assert f'<option value="{time_range.key}">{time_range.label}</option>' in html


def test_filters_render_a_fragment_for_htmx_and_a_page_otherwise(ops_client, htmx_headers):
    JobFactory()
    fragment = ops_client.get(LIST, {"status": "queued"}, headers=htmx_headers).content.decode()
    assert fragment.lstrip().startswith('<div id="job-list">') and "<html" not in fragment
    page = ops_client.get(LIST, {"status": "queued"}).content.decode()
    assert "<html" in page and 'hx-push-url="true"' in page
    # The back button asks for the whole page again (history restore).
    restore = ops_client.get(LIST, headers={**htmx_headers, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.content.decode()


@pytest.mark.parametrize("size", [25, 100])
def test_list_queries_do_not_grow_with_the_page(ops_client, django_assert_max_num_queries, size):
    for _ in range(size + 1):
        JobFactory(status=S.DEAD, last_error="boom")
    with django_assert_max_num_queries(6):  # session, user, permissions x2, count, page
        response = ops_client.get(LIST, {"size": str(size)})
    assert len(response.context["page"].jobs) == size


def test_overview_and_detail_queries_are_bounded(ops_client, django_assert_max_num_queries):
    for _ in range(15):
        job = JobFactory(status=S.RUNNING, started_at=timezone.now())
        for i in range(4):
            StepFactory(job=job, position=i + 1,
                        status=StepStatus.RUNNING if i == 1 else StepStatus.PENDING)
    with django_assert_max_num_queries(12):
        assert ops_client.get(reverse("dashboard:overview")).status_code == 200
    job = JobFactory(status=S.DEAD)
    steps = [StepFactory(job=job, position=i + 1) for i in range(30)]
    for n, step in enumerate(steps, start=1):
        AttemptFactory(job=job, number=n, step=step, status="failed")
    with django_assert_max_num_queries(10):
        response = ops_client.get(reverse("dashboard:job", args=[job.pk]))
    assert response.content.decode().count('class="step-toggle"') == 30


# --- Overview -------------------------------------------------------------------------


def test_overview_shows_counts_queues_running_progress_schedules_and_the_chart(ops_client):
    from jobs.scheduling.firing import create_schedule

    now = timezone.now()
    JobFactory.create_batch(2, queue="emails", run_after=now - timedelta(minutes=3))
    running = JobFactory(status=S.RUNNING, task_name="demo.import_catalog", started_at=now)
    StepFactory(job=running, position=1, name="download", status=StepStatus.SUCCEEDED)
    StepFactory(job=running, position=2, name="validate", status=StepStatus.RUNNING,
                progress_current=600, progress_total=1200)
    StepFactory(job=running, position=3, name="load")
    DeadLetterFactory()
    JobFactory(status=S.DEAD, finished_at=now - timedelta(minutes=2))
    JobFactory(status=S.SUCCEEDED, finished_at=now - timedelta(minutes=2))
    create_schedule("nightly-report", "demo.build_report", "0 2 * * *", "Europe/Berlin",
                    args=[7])

    html = ops_client.get(reverse("dashboard:overview")).content.decode()
    assert 'hx-trigger="every 5s [document.visibilityState === &#x27;visible&#x27;]' in html \
        or "every 5s [document.visibilityState === 'visible']" in html
    assert '<span class="status-label">Dead</span></span><strong class="count">2</strong>' in html
    assert "Unresolved dead letters" in html
    assert ">emails</a></td><td class=\"num\">2</td>" in html
    assert "1/3 steps · validate 600/1200" in html
    assert "<code>0 2 * * *</code></td><td>Europe/Berlin</td>" in html
    assert html.count('class="bar-fail"') == 1 and html.count('class="bar-ok"') == 1
    assert "1 succeeded and 1 failed" in html


def test_overview_refresh_returns_only_the_body(ops_client, htmx_headers):
    html = ops_client.get(reverse("dashboard:overview"), headers=htmx_headers).content.decode()
    assert "<html" not in html and 'id="h-status"' in html


# --- Actions --------------------------------------------------------------------------


def test_bulk_requeue_reports_done_and_skipped_and_rerenders_the_filtered_list(
        ops_client, htmx_headers):
    dead = [DeadLetterFactory().job for _ in range(3)]
    running = JobFactory(status=S.RUNNING)
    response = ops_client.post(
        reverse("dashboard:action", args=["requeue"]),
        {"ids": [j.pk for j in dead] + [running.pk], "confirmed": "1", "origin": "list",
         "filters": "status=dead"},
        headers=htmx_headers,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Requeued 3, skipped 1 that are not dead or cancelled." in html
    assert 'id="flash" class="flash-region" aria-live="polite" hx-swap-oob="true"' in html
    assert response.context["page"].jobs == []  # the list still filters on dead
    assert set(Job.objects.filter(pk__in=[j.pk for j in dead]).values_list(
        "status", flat=True)) == {S.QUEUED}


def test_an_action_without_javascript_asks_on_a_page_first(ops_client):
    job = JobFactory(status=S.QUEUED)
    url = reverse("dashboard:action", args=["cancel"])
    response = ops_client.post(url, {"ids": [job.pk], "filters": "status=queued"})
    assert response.status_code == 200
    assert "Cancel: 1 job?" in response.content.decode()
    job.refresh_from_db()
    assert job.status == S.QUEUED
    response = ops_client.post(url, {"ids": [job.pk], "filters": "status=queued",
                                     "confirmed": "1"}, follow=True)
    assert response.redirect_chain[-1][0] == f"{LIST}?status=queued"
    assert "Cancelled 1, skipped none." in response.content.decode()


@pytest.mark.parametrize("ids, message", [([], "Select at least one job."),
                                          (["not-a-uuid"], "not a valid UUID")])
def test_a_malformed_action_is_400_not_500(ops_client, htmx_headers, ids, message):
    response = ops_client.post(reverse("dashboard:action", args=["requeue"]),
                               {"ids": ids, "confirmed": "1"}, headers=htmx_headers)
    assert response.status_code == 400
    assert response["HX-Reswap"] == "none"  # the list stays; the message comes out of band
    html = response.content.decode()
    assert message in html and 'hx-swap-oob="true"' in html


def test_an_action_from_the_job_page_rerenders_the_job(ops_client, htmx_headers):
    job = DeadLetterFactory().job
    response = ops_client.post(reverse("dashboard:action", args=["resolve"]),
                               {"ids": [job.pk], "confirmed": "1", "origin": "detail",
                                "note": "upstream fixed"}, headers=htmx_headers)
    html = response.content.decode()
    assert 'id="job-live"' in html and "Resolved 1, skipped none." in html
    assert 'data-action="resolve"' not in html  # no open dead letter any more
    assert DeadLetter.objects.get(job=job).note == "upstream fixed"


def test_resolving_without_a_note_is_refused_and_changes_nothing(ops_client, htmx_headers):
    job = DeadLetterFactory().job
    response = ops_client.post(reverse("dashboard:action", args=["resolve"]),
                               {"ids": [job.pk], "confirmed": "1", "note": "  "},
                               headers=htmx_headers)
    assert response.status_code == 400 and "needs a note" in response.content.decode()
    assert DeadLetter.objects.get(job=job).resolved_at is None


# --- Job detail -----------------------------------------------------------------------


def catalog_job(**fields):
    job = JobFactory(task_name="demo.import_catalog", **fields)
    names = ["download", "validate", "transform", "load"]
    statuses = [StepStatus.SUCCEEDED, StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.PENDING]
    steps = [StepFactory(job=job, position=i + 1, name=n, status=s)
             for i, (n, s) in enumerate(zip(names, statuses, strict=True))]
    return job, steps


def test_detail_shows_header_jump_bar_and_steps(ops_client):
    job, steps = catalog_job(status=S.DEAD, idempotency_key="catalog:7", attempt_count=1,
                             max_attempts=1, last_error="ValueError: too many rows")
    transform = steps[2]
    Step.objects.filter(pk=transform.pk).update(
        limits={"max_rows": 500}, error_class="ValueError", error_message="too many rows",
        traceback="Traceback (most recent call last):\n  ...\nValueError: too many rows")
    AttemptFactory(job=job, number=1, status="failed", step=transform,
                   error_class="ValueError", error_message="too many rows")
    html = ops_client.get(reverse("dashboard:job", args=[job.pk])).content.decode()
    assert "catalog:7" in html and "1/1" in html
    assert 'class="jumpbar"' in html and "Expand all" in html and "Collapse all" in html
    for step in steps:
        assert f'id="step-{step.pk}"' in html and f'href="#step-{step.pk}"' in html
    # The failed step opens by default; the others are collapsed, and say so.
    assert f'aria-expanded="true" aria-controls="step-{transform.pk}-body"' in html
    assert f'aria-expanded="false" aria-controls="step-{steps[0].pk}-body"' in html
    assert 'role="img" aria-label="Failed"' in html  # the pill's dot is labelled
    assert "Traceback (most recent call last)" in html
    assert f'action="{reverse("dashboard:step-limits", args=[job.pk, transform.pk])}"' in html


def test_a_job_without_steps_lists_its_attempts(ops_client):
    job = JobFactory(status=S.RETRYING, attempt_count=1, last_error="ConnectionError: down")
    AttemptFactory(job=job, number=1, status="failed", error_class="ConnectionError",
                   error_message="down")
    html = ops_client.get(reverse("dashboard:job", args=[job.pk])).content.decode()
    assert 'id="h-attempts"' in html and "ConnectionError: down" in html
    assert 'class="jumpbar"' not in html
    assert 'class="spinner"' not in html  # a retrying job shows its error, not a spinner


def test_errors_and_tracebacks_are_escaped(ops_client):
    evil = "<script>alert(1)</script>"
    job, steps = catalog_job(status=S.DEAD, last_error=f"ValueError: {evil}")
    Step.objects.filter(pk=steps[2].pk).update(error_message=evil, traceback=evil,
                                               name="<b>transform</b>")
    AttemptFactory(job=job, number=1, status="failed", error_message=evil, traceback=evil)
    for url in (LIST, reverse("dashboard:job", args=[job.pk])):
        html = ops_client.get(url).content.decode()
        assert "<script>alert" not in html and "<b>transform" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_polling_stops_once_the_job_is_terminal(ops_client, htmx_headers):
    job = JobFactory(status=S.RUNNING)
    live = reverse("dashboard:job-live", args=[job.pk])
    response = ops_client.get(live, headers=htmx_headers)
    assert response.status_code == 200
    assert f'hx-get="{live}" hx-trigger="every 2s [dashboardMayPoll()]"' in \
        response.content.decode()
    for status in (S.SUCCEEDED, S.DEAD, S.CANCELLED):
        Job.objects.filter(pk=job.pk).update(status=status)
        response = ops_client.get(live, headers=htmx_headers)
        assert response.status_code == 286  # htmx: stop polling
        assert "hx-trigger" not in response.content.decode()


def test_step_limits_are_validated_and_saved(ops_client, htmx_headers):
    job, steps = catalog_job(status=S.DEAD)
    step = steps[2]
    Step.objects.filter(pk=step.pk).update(limits={"max_rows": 500})
    url = reverse("dashboard:step-limits", args=[job.pk, step.pk])
    for bad, message in [("{not json", "Not valid JSON"),
                         ('{"max_rowz": 9}', "Unknown limit(s)"),
                         ('{"max_rows": -1}', "must be positive"),
                         ('{"max_rows": "9"}', "must be of type int")]:
        response = ops_client.post(url, {"limits": bad}, headers=htmx_headers)
        assert response.status_code == 400
        html = response.content.decode()
        assert message in html and 'aria-invalid="true"' in html
    step.refresh_from_db()
    assert step.limits == {"max_rows": 500}
    response = ops_client.post(url, {"limits": '{"max_rows": 5000}'}, headers=htmx_headers)
    assert response.status_code in (200, 286)
    assert "Saved the limits of step “transform”" in response.content.decode()
    step.refresh_from_db()
    assert step.limits == {"max_rows": 5000}


def test_invalid_limits_without_htmx_rerender_the_page_with_the_error(ops_client):
    job, steps = catalog_job(status=S.DEAD)
    Step.objects.filter(pk=steps[2].pk).update(limits={"max_rows": 500})
    url = reverse("dashboard:step-limits", args=[job.pk, steps[2].pk])
    for bad in ('{"max_rows": 5000', "", "[1, 2]"):
        response = ops_client.post(url, {"limits": bad})
        assert response.status_code == 400
        html = response.content.decode()
        assert "<html" in html and f'id="limits-err-{steps[2].pk}"' in html
    assert "Not valid JSON: " in ops_client.post(url, {"limits": "{"}).content.decode()
    assert Step.objects.get(pk=steps[2].pk).limits == {"max_rows": 500}


def test_saving_limits_writes_only_the_limits(ops_client):
    """Through operations.save_step_limits: status and progress stay as a worker left them."""
    job, steps = catalog_job(status=S.DEAD)
    Step.objects.filter(pk=steps[2].pk).update(limits={"max_rows": 500, "strict": True},
                                               progress_current=17, progress_total=40)
    url = reverse("dashboard:step-limits", args=[job.pk, steps[2].pk])
    response = ops_client.post(url, {"limits": '{"max_rows": 5000}'})
    assert response.status_code == 302
    assert response["Location"].endswith(f"#step-{steps[2].pk}")
    step = Step.objects.get(pk=steps[2].pk)
    assert step.limits == {"max_rows": 5000, "strict": True}  # merged over the declared ones
    assert (step.status, step.progress_current) == (StepStatus.FAILED, 17)


def test_step_limits_need_the_resume_permission():
    job, steps = catalog_job(status=S.DEAD)
    Step.objects.filter(pk=steps[2].pk).update(limits={"max_rows": 500})
    client = client_for(staff_with("requeue_job"))
    html = client.get(reverse("dashboard:job", args=[job.pk])).content.decode()
    assert "Save limits" not in html
    url = reverse("dashboard:step-limits", args=[job.pk, steps[2].pk])
    assert client.post(url, {"limits": '{"max_rows": 5000}'}).status_code == 403
    # Refused before the value is read: no form error tells what would have passed.
    assert client.post(url, {"limits": "{not json"}).status_code == 403
    assert client.post(url, {"limits": '{"max_rows": 5000}'},
                       headers={"HX-Request": "true"}).status_code == 403
    assert Step.objects.get(pk=steps[2].pk).limits == {"max_rows": 500}


def test_a_step_of_another_job_is_404(ops_client):
    job, _ = catalog_job()
    other = StepFactory(limits={"max_rows": 1})
    url = reverse("dashboard:step-limits", args=[job.pk, other.pk])
    assert ops_client.post(url, {"limits": '{"max_rows": 2}'}).status_code == 404


def test_an_unknown_job_is_404(ops_client):
    job = JobFactory()
    url = reverse("dashboard:job", args=[job.pk])
    job.delete()
    assert ops_client.get(url).status_code == 404


def test_resume_after_raising_a_limit_from_the_dashboard(ops_client, htmx_headers):
    """The operator's story: a catalog import died at transform; raise the limit, resume."""
    from jobs import enqueue
    from jobs.worker.runner import run_job

    job = enqueue("demo.import_catalog", "partner.csv", max_rows=500)
    assert run_job(job.pk) == S.DEAD
    step = Step.objects.get(job=job, name="transform")
    ops_client.post(reverse("dashboard:step-limits", args=[job.pk, step.pk]),
                    {"limits": '{"max_rows": 5000}'}, headers=htmx_headers)
    response = ops_client.post(reverse("dashboard:action", args=["resume"]),
                               {"ids": [job.pk], "confirmed": "1", "origin": "detail"},
                               headers=htmx_headers)
    assert "Resumed 1, skipped none." in response.content.decode()
    assert run_job(job.pk) == S.SUCCEEDED


# --- The same on both screens ---------------------------------------------------------


def test_a_job_reads_the_same_here_and_in_the_admin(ops_client):
    """One owner, jobs.ops.presentation: the same dot, words and duration on both screens."""
    now = timezone.now()
    job = JobFactory(status=S.RETRYING, started_at=now - timedelta(minutes=5, seconds=3),
                     finished_at=now, attempt_count=1)
    AttemptFactory(job=job, number=1, status=AttemptStatus.INTERRUPTED,
                   duration=timedelta(seconds=4, milliseconds=250))
    job_dot = presentation.status_dot(S.RETRYING)
    attempt_dot = presentation.status_dot(AttemptStatus.INTERRUPTED, "attempt")
    assert "Waiting to retry" in job_dot and "Interrupted (shutdown)" in attempt_dot

    screens = {
        "dashboard list": (LIST, [job_dot, "5 min 3 s"]),
        "dashboard job": (reverse("dashboard:job", args=[job.pk]),
                          [job_dot, "5 min 3 s", attempt_dot, "4.2 s"]),
        "admin list": (reverse("admin:jobs_job_changelist"), [job_dot, "5 min 3 s"]),
        "admin job": (reverse("admin:jobs_job_change", args=[job.pk]),
                      [job_dot, "5 min 3 s", attempt_dot, "4.2 s"]),
        "admin attempts": (reverse("admin:jobs_attempt_changelist"), [attempt_dot, "4.2 s"]),
    }
    for screen, (url, expected) in screens.items():
        html = ops_client.get(url).content.decode()
        for text in expected:
            assert text in html, f"{screen} does not show {text!r}"
