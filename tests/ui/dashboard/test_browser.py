"""The dashboard in headless Chromium against live_server: what only a browser can show.

Statuses change only through jobs.core.transitions (or jobs.worker.runner), as a worker would.
"""

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from jobs import enqueue
from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, JobStatus, Step, StepStatus
from tests.factories import AttemptFactory, DeadLetterFactory, JobFactory, UserFactory
from tests.ui.dashboard import scenes
from tests.ui.dashboard.conftest import SCREENSHOTS
from tests.ui.dashboard.factories import StepFactory

pytestmark = pytest.mark.browser
S = JobStatus


def job_url(job) -> str:
    return reverse("dashboard:job", args=[job.pk])


def many_steps(n: int = 14) -> tuple[Job, list[Step]]:
    job = JobFactory(status=S.DEAD, task_name="demo.import_catalog", last_error="boom")
    statuses = [StepStatus.SUCCEEDED] * (n - 2) + [StepStatus.FAILED, StepStatus.PENDING]
    steps = [StepFactory(job=job, position=i + 1, name=f"step-{i + 1:02d}-with-a-long-name",
                         status=status, result={"i": i} if status == "succeeded" else None,
                         error_message="boom" if status == "failed" else "")
             for i, status in enumerate(statuses)]
    return job, steps


def test_expand_all_and_collapse_all(page, js_errors):
    job, steps = many_steps(5)
    page.goto(job_url(job))
    toggles = page.locator(".step-toggle")
    bodies = page.locator(".step-body")
    expect(toggles).to_have_count(5)
    expect(bodies.nth(0)).to_be_hidden()  # succeeded steps start collapsed
    expect(bodies.nth(3)).to_be_visible()  # the failed one starts open

    page.get_by_role("button", name="Expand all").click()
    for i in range(5):
        expect(toggles.nth(i)).to_have_attribute("aria-expanded", "true")
        expect(bodies.nth(i)).to_be_visible()

    page.get_by_role("button", name="Collapse all").click()
    for i in range(5):
        expect(toggles.nth(i)).to_have_attribute("aria-expanded", "false")
        expect(bodies.nth(i)).to_be_hidden()

    # Keyboard operable: the toggles are real buttons.
    toggles.nth(1).focus()
    page.keyboard.press("Enter")
    expect(toggles.nth(1)).to_have_attribute("aria-expanded", "true")
    expect(bodies.nth(1)).to_be_visible()
    page.keyboard.press("Space")
    expect(bodies.nth(1)).to_be_hidden()
    assert js_errors == []


def test_a_pill_scrolls_its_step_into_view_and_expands_it(page, js_errors):
    job, steps = many_steps(14)
    target = steps[11]  # succeeded, so collapsed, and far below the fold
    page.set_viewport_size({"width": 1100, "height": 600})
    page.goto(job_url(job))
    panel = page.locator(f"#step-{target.pk}")
    expect(panel).not_to_be_in_viewport()
    expect(panel.locator(".step-body")).to_be_hidden()

    pill = page.locator(f'.pill[data-step-pill="{target.pk}"]')
    pill.scroll_into_view_if_needed()  # the pill row scrolls sideways
    pill.click()
    expect(panel).to_be_in_viewport()
    expect(panel.locator(".step-toggle")).to_have_attribute("aria-expanded", "true")
    expect(panel.locator(".step-body")).to_be_visible()
    # The sticky jump bar stays on screen and does not cover the step's header.
    bar = page.locator(".jumpbar").bounding_box()
    page.wait_for_function(
        "id => Math.abs(document.getElementById(id).getBoundingClientRect().top - "
        "document.querySelector('.jumpbar').getBoundingClientRect().bottom) < 40",
        arg=f"step-{target.pk}")
    assert bar["y"] >= 0
    assert js_errors == []


def test_bulk_requeue_with_confirmation_and_result(page, js_errors):
    dead = [DeadLetterFactory().job for _ in range(3)]
    running = JobFactory(status=S.RUNNING)
    page.goto(reverse("dashboard:jobs"))
    expect(page.locator("input[name=ids]")).to_have_count(4)
    page.get_by_label("Select all jobs on this page").check()
    expect(page.locator("[data-selected-count]")).to_have_text("· 4 selected")

    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Requeue (start over)").click()
    expect(page.locator("#flash")).to_have_text(
        "Requeued 3, skipped 1 that are not dead or cancelled.")
    assert dialogs == ["Requeue (start over): 4 jobs?"]
    assert {j.status for j in Job.objects.filter(pk__in=[j.pk for j in dead])} == {S.QUEUED}
    assert Job.objects.get(pk=running.pk).status == S.RUNNING
    # The list was re-rendered in place: the requeued jobs now say so, in words.
    expect(page.locator("#job-list .status-label", has_text="Queued")).to_have_count(3)

    # Dismissing the dialog sends nothing. Observed, not waited for: an accepted action
    # right after it is a barrier. Had the dismissed click sent its POST, it would be
    # recorded before the requeue's (the dialog answers synchronously, inside the click),
    # and the requeue would find three jobs cancelled and requeue them.
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.get_by_label("Select all jobs on this page").check()

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Cancel").click()
    page.once("dialog", accept)
    page.get_by_role("button", name="Requeue (start over)").click()
    expect(page.locator("#flash")).to_have_text(
        "Requeued 0, skipped 4 that are not dead or cancelled.")
    assert dialogs[1:] == ["Cancel: 4 jobs?", "Requeue (start over): 4 jobs?"]
    assert [url.split("/jobs/actions/")[1] for url in posts] == ["requeue/"]
    assert Job.objects.filter(status=S.CANCELLED).count() == 0
    assert js_errors == []


def test_filters_update_the_list_and_the_url_and_back_works(page, js_errors):
    JobFactory(status=S.DEAD, task_name="demo.charge_card")
    JobFactory(status=S.SUCCEEDED, task_name="demo.add")
    page.goto(reverse("dashboard:jobs"))
    expect(page.locator("input[name=ids]")).to_have_count(2)
    page.get_by_label("Status").select_option("dead")
    expect(page).to_have_url(re.compile(r"status=dead"))  # pushed into the URL
    assert "queue=" not in page.url  # empty filters are left out of the shared URL
    expect(page.locator("input[name=ids]")).to_have_count(1)
    page.go_back()
    expect(page.locator("input[name=ids]")).to_have_count(2)
    expect(page.get_by_label("Status")).to_have_value("")
    assert js_errors == []


HIDE_TAB = """hidden => {
    Object.defineProperty(document, "visibilityState", {configurable: true,
                          get: () => hidden ? "hidden" : "visible"});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_the_overview_refreshes_itself_and_pauses_while_the_tab_is_hidden(
        page, js_errors, settings):
    settings.DASHBOARD_OVERVIEW_POLL_SECONDS = 0.3
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url)
            if r.headers.get("hx-request") and "/dashboard/" in r.url else None)
    page.goto(reverse("dashboard:overview"))
    expect(page.locator(".card .count").first).to_have_text("0")
    JobFactory()  # a new queued job shows up without a reload
    expect(page.locator(".card .count").first).to_have_text("1")

    page.evaluate(HIDE_TAB, True)
    page.wait_for_timeout(400)
    hidden_at = len(refreshes)
    page.wait_for_timeout(1000)
    assert len(refreshes) == hidden_at, "a hidden tab must not poll"
    page.evaluate(HIDE_TAB, False)  # shown again: refreshes at once, then keeps polling
    page.wait_for_timeout(1000)
    assert len(refreshes) >= hidden_at + 2
    assert js_errors == []


def test_the_job_page_polls_until_the_job_fails_then_stops(page, js_errors, settings):
    settings.DASHBOARD_DETAIL_POLL_SECONDS = 0.4
    job = enqueue("demo.import_catalog", "feed.csv")
    claimed = transitions.claim(job.pk, worker_host="w", worker_pid=1, lease_seconds=60)
    live = reverse("dashboard:job-live", args=[job.pk])
    polls: list[float] = []
    page.on("request", lambda r: polls.append(time.monotonic()) if live in r.url else None)

    page.goto(job_url(job))
    header = page.locator(".job-header")
    expect(header.locator(".status-label")).to_have_text("Running")
    expect(header.locator(".spinner")).to_be_visible()
    deadline = time.monotonic() + 5
    while len(polls) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(polls) >= 2, "the running job's page did not poll"

    # A failed attempt with a retry ahead: the error shows instead of a spinner, polling goes on.
    retry_at = timezone.now() + timedelta(seconds=1)
    transitions.fail(claimed, ErrorInfo("ConnectionError", "feed host unreachable"),
                     retry_at=retry_at)
    expect(header.locator(".status-label")).to_have_text("Waiting to retry")
    expect(header.locator(".job-error")).to_contain_text("ConnectionError: feed host unreachable")
    expect(header.locator(".spinner")).to_have_count(0)
    seen = len(polls)
    page.wait_for_timeout(1000)
    assert len(polls) > seen, "a retrying job must keep polling"

    # Due by the database's clock: retry_at plus the moment fail() took (issue 22).
    claimed = transitions.claim(job.pk, worker_host="w", worker_pid=1, lease_seconds=60,
                                now=Job.objects.get(pk=job.pk).run_after)
    expect(header.locator(".status-label")).to_have_text("Running")
    transitions.fail(claimed, ErrorInfo("ValueError", "row 17 is malformed"), retry_at=None)
    expect(header.locator(".status-label")).to_have_text("Dead")
    expect(header.locator(".job-error")).to_contain_text("ValueError: row 17 is malformed")
    expect(header.locator(".spinner")).to_have_count(0)

    settled = len(polls)
    page.wait_for_timeout(2000)  # five poll intervals
    assert len(polls) == settled, "polling must stop once the job is dead"
    assert page.locator("#job-live[hx-trigger]").count() == 0
    assert js_errors == []


def test_an_error_with_a_script_tag_is_shown_as_text(page, js_errors):
    evil = "<script>window.__pwned = 1</script>"
    image = '<img src=x onerror="window.__pwned = 2">'
    job = JobFactory(status=S.DEAD, task_name="demo.import_feed",
                     last_error=f"ValueError: feed has a malformed row: {evil}")
    step = StepFactory(job=job, position=1, name="parse", status=StepStatus.FAILED,
                       error_class="ValueError", error_message=f"bad row {image}",
                       traceback=f"Traceback ...\nValueError: {evil}")
    AttemptFactory(job=job, number=1, status="failed", step=step, error_class="ValueError",
                   error_message=evil, traceback=evil)
    DeadLetterFactory(job=job, error_message=evil)

    page.goto(job_url(job))
    expect(page.locator(".job-error")).to_contain_text(evil)
    expect(page.locator(".step-error")).to_contain_text(image)
    page.goto(reverse("dashboard:jobs"))
    expect(page.locator(".error-cell").first).to_contain_text("<script>")
    assert page.evaluate("window.__pwned") is None
    assert js_errors == []


def test_screenshots_for_the_readme(page, js_errors):
    owner = UserFactory(username="catalog-team")
    dead_import = scenes.build(owner)

    page.goto(reverse("dashboard:overview"))
    expect(page.locator(".bar-fail").first).to_be_visible()
    expect(page.get_by_text("1/5 steps · validate 700/1200")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)

    page.goto(job_url(dead_import))
    expect(page.locator(".step-error")).to_contain_text("exceed the transform limit")
    transform = Step.objects.get(job=dead_import, name="transform")
    page.locator(f".step-toggle[aria-controls='step-{transform.pk}-body']").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "job-detail.png"), full_page=True)
    assert (SCREENSHOTS / "overview.png").stat().st_size > 10_000
    assert js_errors == []
