"""The operator console's second round in headless Chromium against live_server, with real
clusters where the page must show what they do: pause a queue, requeue a failure group,
act on every match, see a killed cluster go."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from jobs import enqueue
from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, JobStatus, OperatorAction, QueuePause
from jobs.worker.runner import run_job
from tests.cluster import wait_for
from tests.factories import JobFactory
from tests.ui.dashboard.conftest import SCREENSHOTS
from tests.ui.dashboard.factories import StepFactory

pytestmark = pytest.mark.browser
S = JobStatus
REFRESH = 0.5  # cluster registry refresh: a killed cluster is gone after 1.5 s


def dead(n, task="tests.add", message="bad row 7 in 'a.csv'"):
    for i in range(n):
        job = JobFactory(task_name=task)
        claimed = transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)
        transitions.fail(claimed, ErrorInfo("ValueError", message.replace("7", str(i)),
                                            f"Traceback (most recent call last):\n  ...\n"
                                            f"ValueError: {message}"), retry_at=None)


def carry_out(row: OperatorAction) -> None:
    """What a worker does with the operation's job: claim it and run jobs.bulk_action."""
    assert run_job(row.job_id) == S.SUCCEEDED


def test_from_the_overview_a_failure_groups_cause_and_traceback_in_two_clicks(page, js_errors):
    dead(4)
    dead(2, task="tests.noop", message="HTTP 503 from billing")
    page.goto(reverse("dashboard:overview"))
    top = page.locator("#h-failing + table tbody tr").first
    expect(top).to_contain_text("ValueError: bad row <n> in '…'")
    top.get_by_role("link").click()  # click 1
    group = page.locator("#group-1")
    expect(group.locator(".sample pre")).to_be_visible()  # the sample is open: 1 click
    page.locator("#group-2 summary").click()  # click 2, for the second group
    expect(page.locator("#group-2 .sample pre")).to_contain_text("HTTP 503")
    page.screenshot(path=str(SCREENSHOTS / "failures.png"), full_page=True)
    assert js_errors == []


def test_requeue_every_dead_job_of_one_cause_in_three_clicks(page, js_errors):
    dead(60)
    dead(1, message="something else entirely")
    page.goto(reverse("dashboard:overview"))
    page.locator("#h-failing + table tbody tr").first.get_by_role("link").click()  # 1
    page.once("dialog", lambda d: d.accept())  # 3: "Requeue (start over): all 60 dead …?"
    page.get_by_role("button", name="Requeue all 60 dead").click()  # 2
    expect(page.locator(".report")).to_contain_text("Working: 0 of 60")
    row = OperatorAction.objects.get(action="requeue")
    carry_out(row)
    # The page polls every second and stops once the report is final.
    expect(page.locator(".report")).to_have_text("Requeued 60, skipped 0.", timeout=10_000)
    expect(page.locator("progress")).to_have_count(0)
    assert Job.objects.filter(status=S.DEAD).count() == 1  # the other cause is untouched
    assert js_errors == []


def test_a_bulk_action_over_every_match_shows_progress_and_a_truthful_report(page, js_errors):
    for _ in range(70):
        JobFactory(task_name="tests.add", status=S.QUEUED)
    for _ in range(5):
        JobFactory(task_name="tests.add", status=S.SUCCEEDED)
    page.goto(reverse("dashboard:jobs") + "?task=tests.add")
    expect(page.locator(".count strong")).to_have_text("75")
    box = page.locator("details.all-matching")
    expect(box).to_have_attribute("open", "")  # more match than the page shows
    page.once("dialog", lambda d: d.accept())
    box.get_by_role("button", name="Cancel: all 75").click()
    expect(page.locator(".report")).to_contain_text("of 75 handled so far")
    page.screenshot(path=str(SCREENSHOTS / "operation.png"), full_page=True)
    carry_out(OperatorAction.objects.get(action="cancel"))
    expect(page.locator(".report")).to_have_text(
        "Cancelled 70, skipped 5 (5 that had already finished).", timeout=10_000)
    page.get_by_role("link", name="Activity").click()
    expect(page.locator("table.activity tbody tr").first).to_contain_text(
        "every job of task “tests.add”, enqueued before ")
    page.screenshot(path=str(SCREENSHOTS / "activity.png"), full_page=True)
    assert js_errors == []


@pytest.mark.slow
def test_pause_a_queue_and_see_claiming_stop(page, js_errors, cluster_factory, on_postgres):
    cluster = cluster_factory(name="default", queues=["default"])
    first = enqueue("tests.noop")
    assert wait_for(lambda: Job.objects.get(pk=first.pk).status == S.SUCCEEDED, 30), \
        cluster.log()
    page.goto(reverse("dashboard:queues"))
    row = page.locator("table.queues tbody tr", has_text="default")
    row.get_by_role("button", name="Pause").click()
    expect(page.locator("table.queues tbody tr", has_text="default")).to_contain_text("Paused")
    assert QueuePause.objects.filter(queue="default").exists()

    waiting = enqueue("tests.noop")
    page.reload()
    expect(page.locator("table.queues tbody tr", has_text="default").locator("td").nth(2)) \
        .to_have_text("1")  # due now, and no cluster takes it
    page.screenshot(path=str(SCREENSHOTS / "queues.png"), full_page=True)
    resumed_at = timezone.now()
    page.locator("table.queues tbody tr", has_text="default").get_by_role(
        "button", name="Resume").click()
    expect(page.locator("#flash")).to_contain_text("Resumed queue “default”")
    assert wait_for(lambda: Job.objects.get(pk=waiting.pk).status == S.SUCCEEDED, 10), \
        cluster.log()
    waiting.refresh_from_db()
    # Claimed only after the resume, although the cluster polled all along.
    assert waiting.started_at >= resumed_at
    assert waiting.started_at - resumed_at < timedelta(seconds=2)
    assert js_errors == []


@pytest.mark.slow
def test_the_workers_page_after_a_cluster_is_killed(page, js_errors, cluster_factory,
                                                     on_postgres, settings):
    settings.JOBS = {**getattr(settings, "JOBS", {}), "CLUSTER_REFRESH_SECONDS": REFRESH}
    settings.DASHBOARD_OVERVIEW_POLL_SECONDS = 1
    env = {"JOBS_CLUSTER_REFRESH_SECONDS": str(REFRESH)}
    doomed = cluster_factory(name="doomed", env=env, queues=["default"])
    job = enqueue("tests.sleep", 60)
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == S.RUNNING, 30), doomed.log()
    page.goto(reverse("dashboard:workers"))
    panel = page.locator("section.cluster", has_text="doomed")
    expect(panel).to_have_class("panel cluster cluster-alive")
    expect(panel).to_contain_text("1 busy, 1 idle")
    expect(panel.locator("table")).to_contain_text("tests.sleep")
    page.screenshot(path=str(SCREENSHOTS / "workers.png"), full_page=True)

    doomed.kill()
    killed = time.monotonic()
    # The page polls by itself: no reload.
    expect(panel).to_have_class("panel cluster cluster-gone", timeout=15_000)
    assert time.monotonic() - killed < REFRESH * 3 + 6
    expect(panel).to_contain_text("the reaper takes its jobs back")
    expect(panel.locator("table")).to_contain_text("tests.sleep")  # still held, lease running
    assert js_errors == []


def test_on_a_narrow_screen_every_step_pill_and_the_nav_stay_within_the_page(page, js_errors):
    job = JobFactory(status=S.DEAD, task_name="demo.import_catalog", last_error="boom")
    for i in range(9):
        StepFactory(job=job, position=i + 1, name=f"step-{i + 1}-with-a-long-name",
                    status="succeeded" if i < 7 else "failed")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(reverse("dashboard:job", args=[job.pk]))
    pills = page.locator(".pill")
    expect(pills).to_have_count(9)
    for i in range(9):
        box = pills.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (i, box)
    for link in page.locator(".topbar nav a").all():
        box = link.bounding_box()
        assert box and box["x"] + box["width"] <= 390
    page.screenshot(path=str(SCREENSHOTS / "job-detail-narrow.png"), full_page=True)
    assert js_errors == []
