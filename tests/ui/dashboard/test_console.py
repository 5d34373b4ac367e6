"""The operator console's second round through Django's test client: queues and pause,
workers, failures by cause, task figures, the audit log, actions on every match."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import queries
from jobs.core import queues, transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import (
    AttemptStatus,
    Cluster,
    Job,
    JobStatus,
    OperationStatus,
    OperatorAction,
    QueuePause,
    Step,
    StepStatus,
)
from jobs.ops import bulk
from jobs.ops.presentation import short_id
from tests.factories import AttemptFactory, JobFactory, StaffFactory, UserFactory
from tests.ui.dashboard.factories import staff_with

pytestmark = pytest.mark.django_db
S = JobStatus
PAGES = ["dashboard:queues", "dashboard:workers", "dashboard:failures", "dashboard:tasks",
         "dashboard:activity"]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def dead(task="tests.add", message="bad row 7", n=1):
    jobs = []
    for _ in range(n):
        job = JobFactory(task_name=task)
        claimed = transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)
        transitions.fail(claimed, ErrorInfo("ValueError", message, "Traceback\n<b>boom</b>"),
                         retry_at=None)
        jobs.append(job)
    return jobs


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_for_staff_only(name):
    assert Client().get(reverse(name)).status_code == 302
    assert client_for(UserFactory()).get(reverse(name)).status_code in (302, 403)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_answers_in_a_bounded_number_of_queries(name, ops_client,
                                                           django_assert_max_num_queries):
    dead(n=3)
    dead(message="other 1")
    JobFactory(status=S.RUNNING, lease_owner="host:7")
    Cluster.objects.create(name="c1", host="host", pid=1, queues=["default"], workers=2,
                           pids=[7, 8])
    bulk.start("requeue", StaffFactory(is_superuser=True), {"status": S.DEAD})
    with django_assert_max_num_queries(14):
        response = ops_client.get(reverse(name))
    assert response.status_code == 200


# --- Queues -------------------------------------------------------------------------


def test_pause_and_resume_need_their_permission_and_are_logged():
    JobFactory(queue="emails")
    refused = client_for(staff_with("requeue_job")).post(
        reverse("dashboard:queue-pause"), {"queue": "emails", "do": "pause"})
    assert refused.status_code == 403 and not QueuePause.objects.exists()

    user = staff_with("pause_queue")
    client = client_for(user)
    response = client.post(reverse("dashboard:queue-pause"), {"queue": "emails", "do": "pause"},
                           follow=True)
    assert "Paused queue “emails”" in response.content.decode()
    assert QueuePause.objects.get().paused_by == user
    page = client.get(reverse("dashboard:queues")).content.decode()
    assert "Paused" in page and "Resume" in page
    client.post(reverse("dashboard:queue-pause"), {"queue": "emails", "do": "resume"})
    assert not QueuePause.objects.exists()
    assert list(OperatorAction.objects.order_by("id").values_list("action", "username")) == [
        ("pause_queue", user.username), ("resume_queue", user.username)]


@pytest.mark.parametrize("data", [{"queue": "", "do": "pause"}, {"queue": "q", "do": "explode"},
                                  {"queue": " padded", "do": "pause"}, {"queue": "x" * 65}])
def test_a_malformed_pause_is_a_400_that_changes_nothing(data, ops_client, htmx_headers):
    response = ops_client.post(reverse("dashboard:queue-pause"), data, headers=htmx_headers)
    assert response.status_code == 400
    assert "Nothing changed" in response.content.decode()
    assert not QueuePause.objects.exists() and not OperatorAction.objects.exists()


# --- Failures -----------------------------------------------------------------------


def test_failures_show_each_cause_with_an_escaped_sample_traceback(ops_client):
    dead(n=2, message="bad row 7")
    dead(message="bad row 12")
    page = ops_client.get(reverse("dashboard:failures")).content.decode()
    assert "ValueError: bad row &lt;n&gt;" in page
    assert '<strong>3</strong> jobs of <a href="/dashboard/tasks/tests.add/">' in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page and "<b>boom</b>" not in page
    assert "Requeue all 3 dead" in page


def test_requeue_a_whole_group_runs_in_the_background_with_a_report(ops_client):
    group = dead(n=3)
    other = dead(message="something else")
    query = "task=tests.add&cause=ValueError%3A+bad+row+%3Cn%3E&status=dead"
    response = ops_client.post(reverse("dashboard:bulk", args=["requeue"]), {"filters": query})
    row = OperatorAction.objects.get(action="requeue")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:operation", args=[row.pk])
    assert row.matched == 3 and row.status == OperationStatus.RUNNING
    bulk.run(row.pk)  # what the jobs.bulk_action job does
    fragment = ops_client.get(response["Location"], headers={"HX-Request": "true"})
    assert fragment.status_code == 286  # finished: htmx stops polling
    assert "Requeued 3, skipped 0." in fragment.content.decode()
    assert set(Job.objects.filter(status=S.QUEUED).values_list("pk", flat=True)) >= {
        j.pk for j in group}
    assert Job.objects.get(pk=other[0].pk).status == S.DEAD


def test_a_running_operation_keeps_polling(ops_client):
    dead()
    row = bulk.start("requeue", StaffFactory(is_superuser=True), {"status": S.DEAD})
    fragment = ops_client.get(reverse("dashboard:operation", args=[row.pk]),
                              headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "Working: 0 of 1" in fragment.content.decode()


@pytest.mark.parametrize(("filters", "reason"), [
    ("status=exploded", "status: Select a valid choice"),
    ("args=not-json", "args filter: Not valid JSON"),
    ("since=yesterday", "since: Enter a valid date/time"),
    # A filter that would be dropped widens the action: each is refused, not ignored.
    ("stauts=dead", "Unknown filter &#x27;stauts&#x27;"),
    ("status=dead&stauts=dead", "Unknown filter &#x27;stauts&#x27;"),
    ("%%%", "not a list query string"),
    ("status", "not a list query string"),
    ("status=", "has no value"),
    ("status=dead&status=cancelled", "given twice"),
    ("after=abc", "Unknown filter &#x27;after&#x27;"),
    ("queue=%FF", "not a list query string"),
    ("args=%7B%22a%22%3A+NaN%7D", "NaN, which JSON cannot represent"),
])
def test_a_bulk_start_with_a_bad_filter_starts_nothing(filters, reason, ops_client):
    dead()
    response = ops_client.post(reverse("dashboard:bulk", args=["cancel"]), {"filters": filters})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was started" in page and reason in page
    assert not OperatorAction.objects.exists()
    assert Job.objects.filter(status=S.CANCELLED).count() == 0


def test_an_action_on_every_job_without_a_filter_asks_for_the_count_first(ops_client):
    dead(n=3)
    url = reverse("dashboard:bulk", args=["requeue"])
    asked = ops_client.post(url, {"filters": ""})
    assert asked.status_code == 200 and not OperatorAction.objects.exists()
    assert "every job (3)?" in asked.content.decode()
    assert 'name="every" value="3"' in asked.content.decode()
    # A stale count (a job arrived since) asks again with the new one.
    dead()
    again = ops_client.post(url, {"filters": "", "every": "3"})
    assert again.status_code == 200 and "every job (4)?" in again.content.decode()
    assert not OperatorAction.objects.exists()
    started = ops_client.post(url, {"filters": "", "every": "4"})
    row = OperatorAction.objects.get()
    assert started.status_code == 302 and row.matched == 4


def test_bulk_start_checks_the_actions_permission():
    response = client_for(staff_with("view_job", "cancel_job")).post(
        reverse("dashboard:bulk", args=["requeue"]), {"filters": "status=dead"})
    assert response.status_code == 403 and not OperatorAction.objects.exists()
    assert client_for(staff_with("view_job", "cancel_job")).post(
        reverse("dashboard:bulk", args=["explode"]), {}).status_code == 404


# --- Job list fixes -----------------------------------------------------------------


def test_the_per_page_box_shows_what_the_page_shows(ops_client):
    page = ops_client.get(reverse("dashboard:jobs")).content.decode()
    assert '<option value="50" selected>' in page


def test_the_list_filters_unresolved_and_resolved_dead_letters(ops_client):
    open_, handled = dead(), dead()
    transitions.resolve_dead_letters_of_jobs([handled[0].pk], by=None, note="known")
    def listed(letter):
        r = ops_client.get(reverse("dashboard:jobs"), {"letter": letter})
        return {j.pk for j in r.context["page"].jobs}
    assert listed("open") == {open_[0].pk}
    assert listed("resolved") == {handled[0].pk}


def test_the_short_id_the_list_shows_finds_the_job(ops_client):
    job = JobFactory()
    JobFactory()
    r = ops_client.get(reverse("dashboard:jobs"), {"q": short_id(job.pk)})
    assert [j.pk for j in r.context["page"].jobs] == [job.pk]


def test_jobs_are_found_by_argument_values(ops_client):
    wanted = JobFactory(kwargs={"user_id": 42, "plan": "pro"})
    JobFactory(kwargs={"user_id": 7})
    r = ops_client.get(reverse("dashboard:jobs"), {"args": '{"user_id": 42}'})
    assert [j.pk for j in r.context["page"].jobs] == [wanted.pk]
    bad = ops_client.get(reverse("dashboard:jobs"), {"args": "[1, 2]"})
    assert bad.status_code == 400 and "must be a JSON object" in bad.content.decode()


def test_the_overview_card_counts_and_links_unresolved_letters_only(ops_client):
    dead(n=2)
    page = ops_client.get(reverse("dashboard:overview")).content.decode()
    assert "letter=open" in page


def test_the_favicon_is_not_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


# --- Workers and tasks --------------------------------------------------------------


def test_workers_show_each_busy_worker_and_grey_a_gone_cluster(ops_client):
    now = timezone.now()
    Cluster.objects.create(name="alive", host="h1", pid=1, queues=["default"], workers=2,
                           pids=[10, 11, 12, 13], worker_pids=[11, 12], last_seen_at=now)
    Cluster.objects.create(name="killed", host="h2", pid=2, queues=["default"], workers=2,
                           pids=[21], last_seen_at=now - timedelta(minutes=5))
    busy = JobFactory(status=S.RUNNING, lease_owner="h1:11", started_at=now)
    held = JobFactory(status=S.RUNNING, lease_owner="h2:21", started_at=now)
    page = ops_client.get(reverse("dashboard:workers")).content.decode()
    assert "cluster-alive" in page and "cluster-gone" in page
    assert short_id(busy.pk) in page and short_id(held.pk) in page
    assert "1 busy, 1 idle" in page
    assert "the reaper takes its jobs back" in page
    # Every worker the sentinel reported, the idle one too, and no pusher or monitor.
    assert "pid 11" in page and "pid 12" in page and "Idle" in page
    assert "pid 10" not in page and "pid 13" not in page


def test_task_figures_count_runs_success_and_failures(ops_client):
    now = timezone.now()
    for seconds in (1, 2, 3, 4):
        JobFactory(task_name="tests.add", status=S.SUCCEEDED, started_at=now - timedelta(
            seconds=10), finished_at=now - timedelta(seconds=10 - seconds))
    dead()
    r = ops_client.get(reverse("dashboard:task", args=["tests.add"]))
    [hour] = r.context["windows"][0]["rows"]
    assert (hour.runs, hour.succeeded, hour.dead, hour.failures) == (5, 4, 1, 1)
    assert hour.success_rate == 0.8
    assert hour.p50 is not None and hour.p95 >= hour.p50


def test_each_step_lists_the_attempts_that_ran_it_and_none_is_left_outside(ops_client):
    """A step that failed in attempt 1 and succeeded after a resume in attempt 2: its
    panel lists both, the step before it the attempt it succeeded in, and the header
    says how many attempts there were in all."""
    job = JobFactory(status=S.SUCCEEDED, attempt_count=1, max_attempts=1,
                     last_attempt_number=2)
    first = Step.objects.create(job=job, position=1, name="download",
                                status=StepStatus.SUCCEEDED, attempt_number=1, attempts=1)
    second = Step.objects.create(job=job, position=2, name="transform",
                                 status=StepStatus.SUCCEEDED, attempt_number=2, attempts=1)
    failed = AttemptFactory(job=job, number=1, status=AttemptStatus.FAILED, step=second)
    won = AttemptFactory(job=job, number=2, status=AttemptStatus.SUCCEEDED)
    detail = queries.job_detail(job.pk)
    by_name = {v.step.name: [a.pk for a in v.attempts] for v in detail.steps}
    assert by_name == {"download": [failed.pk], "transform": [won.pk, failed.pk]}
    assert detail.other_attempts == []
    page = ops_client.get(reverse("dashboard:job", args=[job.pk])).content.decode()
    assert "1/1 <span class=\"muted\">this cycle · 2 in all</span>" in page
    assert "ran in 2 attempts" in page and first.name in page


# --- What a newcomer meets: unserved queues, no cluster, figures that agree ---------------


def live(queues=("default",), seconds_ago: float = 1.0) -> Cluster:
    return Cluster.objects.create(name="c", host="h", pid=1, queues=list(queues), workers=2,
                                  last_seen_at=timezone.now() - timedelta(seconds=seconds_ago))


def test_the_overview_names_each_unserved_queue_and_how_to_serve_it(ops_client):
    live(["default"])
    JobFactory(queue="reports", run_after=timezone.now() - timedelta(minutes=3))
    JobFactory(queue="default", run_after=timezone.now() - timedelta(minutes=3))
    page = ops_client.get(reverse("dashboard:overview")).content.decode()
    assert 'id="unserved-queues"' in page and 'data-queue="reports"' in page
    assert 'data-queue="default"' not in page
    assert "1 due, the oldest waiting 3 min" in page
    assert "python manage.py qcluster --queues reports" in page
    assert 'id="no-cluster"' not in page


def test_the_overview_says_when_no_cluster_is_alive(ops_client, settings):
    settings.JOBS = {"QUEUES": ["default", "emails"]}
    live(seconds_ago=3600)  # gone long ago
    page = ops_client.get(reverse("dashboard:overview")).content.decode()
    assert 'id="no-cluster"' in page and "No cluster is running" in page
    assert "python manage.py qcluster" in page and "<code>default,emails</code>" in page
    live()
    page = ops_client.get(reverse("dashboard:overview")).content.decode()
    assert 'id="no-cluster"' not in page and 'id="unserved-queues"' not in page


def test_a_paused_queue_is_shown_paused_not_unserved(ops_client):
    live(["default"])
    JobFactory(queue="reports", run_after=timezone.now() - timedelta(minutes=1))
    queues.pause("reports")
    page = ops_client.get(reverse("dashboard:overview")).content.decode()
    assert 'id="unserved-queues"' not in page
    page = ops_client.get(reverse("dashboard:queues")).content.decode()
    assert "badge-paused" in page and "No cluster serves it" not in page


def test_the_queues_page_flags_the_unserved_row_only(ops_client):
    live(["default"])
    JobFactory(queue="reports", run_after=timezone.now() - timedelta(minutes=1))
    JobFactory(queue="default", run_after=timezone.now() - timedelta(minutes=1))
    JobFactory(queue="nightly", run_after=timezone.now() + timedelta(hours=1))  # not due
    rows = {r.name: r for r in ops_client.get(reverse("dashboard:queues")).context["rows"]}
    assert {n for n, r in rows.items() if r.unserved} == {"reports"}
    page = ops_client.get(reverse("dashboard:queues")).content.decode()
    assert page.count("No cluster serves it") == 1
    assert "qcluster --queues reports" in page


def test_the_overview_queue_figures_agree_with_the_status_cards(ops_client):
    """"Queued 1" beside "no job is waiting" was a contradiction: a job scheduled for
    later is counted as such, in the same panel."""
    live(["default"])
    JobFactory(queue="default", run_after=timezone.now() + timedelta(minutes=10))
    response = ops_client.get(reverse("dashboard:overview"))
    [row] = response.context["queues"]
    assert (row["queue"], row["depth"], row["later"], row["oldest_age"]) == ("default", 0, 1, None)
    page = response.content.decode()
    assert "No job is queued" not in page and "Scheduled for later" in page
    queued = {c["status"]: c["count"] for c in response.context["counts"]}["queued"]
    assert queued == row["depth"] + row["later"]


def test_a_gone_clusters_workers_are_gone_not_idle(ops_client):
    now = timezone.now()
    Cluster.objects.create(name="killed", host="h2", pid=2, queues=["default"], workers=2,
                           pids=[21, 22], worker_pids=[21, 22],
                           last_seen_at=now - timedelta(minutes=5))
    Cluster.objects.create(name="done", host="h3", pid=3, queues=["default"], workers=1,
                           pids=[31], worker_pids=[31], last_seen_at=now, stopped_at=now)
    page = ops_client.get(reverse("dashboard:workers")).content.decode()
    assert "Idle" not in page and "0 idle" not in page
    assert page.count('class="muted worker-gone">Gone<') == 2
    assert page.count('class="muted worker-stopped">Stopped<') == 1
    assert "the rest gone with the cluster" in page
