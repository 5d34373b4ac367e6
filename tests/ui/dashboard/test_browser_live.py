"""Polled pages keep the reader's place: scroll position, open sections and focus
survive every refresh (dashboard.js, htmx:beforeSwap / afterSwap).

Refreshes are observed, not waited for: a counter of htmx:afterSwap events in the
page, and content that changed between them.
"""

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from jobs import enqueue
from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, Step
from tests.factories import JobFactory
from tests.ui.dashboard.factories import StepFactory

pytestmark = pytest.mark.browser

COUNT_SWAPS = """() => {
    window.__swaps = 0;
    document.addEventListener("htmx:afterSwap", () => { window.__swaps += 1; });
}"""
SCROLL_SETTLED = """() => new Promise(done => {
    let last = -1, same = 0;
    const tick = () => {
        same = window.scrollY === last ? same + 1 : 0;
        last = window.scrollY;
        if (same >= 5) done(last); else requestAnimationFrame(tick);
    };
    tick();
})"""
FOCUSED = """() => {
    const el = document.activeElement;
    const details = el && el.closest("details");
    return {tag: el.tagName, text: el.textContent.trim(),
            details: details ? details.dataset.keep : null,
            controls: el.getAttribute("aria-controls"), keep: el.dataset.keep || null};
}"""


def wait_for_swaps(page, more: int) -> None:
    start = page.evaluate("window.__swaps")
    page.wait_for_function(f"window.__swaps >= {start + more}", timeout=10_000)


def running_import_with_a_retried_step():
    """demo.import_catalog in its second attempt, on "publish": "transform" failed in
    attempt 1 (its traceback is in the step's table) and succeeded in attempt 2; ten
    more steps below make a page taller than the window."""
    job = enqueue("demo.import_catalog", "feed.csv")
    steps = {s.name: s for s in Step.objects.filter(job=job)}
    first = transitions.claim(job.pk, worker_host="w1", worker_pid=1, lease_seconds=600)
    for name in ("download", "validate"):
        transitions.start_step(job.pk, 1, steps[name].pk)
        with transaction.atomic():  # a checkpoint commits with the step's own writes
            transitions.checkpoint_step(job.pk, 1, steps[name].pk,
                                        {"rows": list(range(40))})  # a tall result
    transitions.start_step(job.pk, 1, steps["transform"].pk)
    error = ErrorInfo("ConnectionError", "feed host went away",
                      "Traceback (most recent call last):\n" + "  frame\n" * 30)
    transitions.fail_step(1, steps["transform"].pk, error)
    transitions.fail(first, error, retry_at=timezone.now(), step_id=steps["transform"].pk)
    transitions.claim(job.pk, worker_host="w2", worker_pid=2, lease_seconds=600,
                      now=Job.objects.get(pk=job.pk).run_after)
    for name in ("transform", "load"):
        transitions.start_step(job.pk, 2, steps[name].pk)
        with transaction.atomic():
            transitions.checkpoint_step(job.pk, 2, steps[name].pk, {"rows": list(range(40))})
    transitions.start_step(job.pk, 2, steps["publish"].pk)
    for i in range(10):
        StepFactory(job=job, position=6 + i, name=f"later-{i + 1:02d}")
    return job, steps


def test_the_running_job_page_keeps_scroll_open_sections_and_focus_across_refreshes(
        page, js_errors, settings):
    settings.DASHBOARD_DETAIL_POLL_SECONDS = 0.3
    job, steps = running_import_with_a_retried_step()
    transform = steps["transform"]
    page.goto(reverse("dashboard:job", args=[job.pk]))
    page.evaluate(COUNT_SWAPS)
    expect(page.locator("#job-live[hx-trigger]")).to_have_count(1)  # it polls

    # Jump to "transform" with its pill: the step opens and its toggle has focus.
    page.locator(f'.pill[data-step-pill="{transform.pk}"]').click()
    panel = page.locator(f"#step-{transform.pk}")
    expect(panel.locator(".step-toggle")).to_have_attribute("aria-expanded", "true")
    # Open the failed attempt's traceback in the step's table, from the keyboard.
    traceback = panel.locator("details[data-keep^='tb-attempt-']")
    summary = traceback.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(traceback).to_have_attribute("open", "")
    page.evaluate("window.scrollBy(0, 120)")  # and read on a little
    scroll_y = page.evaluate(SCROLL_SETTLED)
    assert scroll_y > 300, "the page must be scrolled for this test to mean anything"
    focused = page.evaluate(FOCUSED)
    assert focused["tag"] == "SUMMARY" and focused["details"].startswith("tb-attempt-")

    # The worker reports progress; three refreshes follow, and they show it.
    transitions.step_progress(2, steps["publish"].pk, 30, 40, "rows 30/40")
    wait_for_swaps(page, 3)
    expect(page.locator(".step-progress")).to_contain_text("rows 30/40")

    assert page.evaluate("window.scrollY") == scroll_y
    expect(traceback).to_have_attribute("open", "")
    expect(panel.locator(".step-toggle")).to_have_attribute("aria-expanded", "true")
    expect(panel.locator(".step-body")).to_be_visible()
    assert page.evaluate(FOCUSED) == focused
    # What the reader did not open stays closed.
    assert page.locator("details[data-keep='job-args']").get_attribute("open") is None
    assert js_errors == []


def test_a_reader_s_closing_and_collapsing_also_survive_refreshes(page, js_errors, settings):
    """Expand all then Collapse all, and the Arguments section opened at the top: the
    steps stay collapsed (not back to the server's defaults), the section open, and
    focus stays on the button pressed last."""
    settings.DASHBOARD_DETAIL_POLL_SECONDS = 0.3
    job, steps = running_import_with_a_retried_step()
    page.goto(reverse("dashboard:job", args=[job.pk]))
    page.evaluate(COUNT_SWAPS)
    page.get_by_role("button", name="Expand all").click()
    page.locator("details[data-keep='job-args'] summary").click()  # opened, at the top
    page.get_by_role("button", name="Collapse all").click()
    wait_for_swaps(page, 3)
    toggles = page.locator(".step-toggle")
    for i in range(toggles.count()):
        expect(toggles.nth(i)).to_have_attribute("aria-expanded", "false")
    expect(page.locator("details[data-keep='job-args']")).to_have_attribute("open", "")
    expect(page.get_by_role("button", name="Collapse all")).to_be_focused()
    assert js_errors == []


def test_the_queues_page_keeps_scroll_and_the_focused_button_across_refreshes(
        page, js_errors, settings):
    settings.DASHBOARD_OVERVIEW_POLL_SECONDS = 0.3
    for i in range(40):
        JobFactory(queue=f"queue-{i:02d}")
    page.goto(reverse("dashboard:queues"))
    page.evaluate(COUNT_SWAPS)
    expect(page.locator("#queues[hx-trigger]")).to_have_count(1)
    button = page.locator("button[data-keep='queue-action-queue-30']")
    button.focus()
    button.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 40)")
    scroll_y = page.evaluate(SCROLL_SETTLED)
    assert scroll_y > 300

    JobFactory(queue="queue-00")  # the table changes under the reader
    wait_for_swaps(page, 3)
    expect(page.locator("#queue-1 td.num").first).to_have_text("2")

    assert page.evaluate("window.scrollY") == scroll_y
    expect(page.locator("button[data-keep='queue-action-queue-30']")).to_be_focused()
    assert js_errors == []
