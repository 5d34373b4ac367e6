"""Layout at 1280 px, measured in Chromium: nothing wider than the page, rows one line
tall, headers whole, a note next to the action it belongs to, badges readable.

Dead jobs here died through jobs.worker.runner.run_job, as a worker writes them.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from jobs import enqueue
from jobs.models import Cluster, Job
from jobs.worker.runner import run_job

pytestmark = pytest.mark.browser

LONG_ERROR = ("the partner feed row could not be parsed because the column 'price' held "
              "text where a number belongs; ") * 12


def dead_job_with_a_long_error() -> Job:
    job = enqueue("tests.fail_permanent", LONG_ERROR)
    run_job(job.pk)
    job.refresh_from_db()
    assert job.status == "dead" and len(job.last_error) > 250
    return job


def test_the_admin_job_list_fits_1280_px_with_one_line_rows(page, js_errors):
    job = dead_job_with_a_long_error()
    for i in range(3):
        run_job(enqueue("tests.add", i, i).pk)
    enqueue("tests.fail_always", "waiting", queue="a-rather-long-queue-name")
    page.goto(reverse("admin:jobs_job_changelist"))
    expect(page.locator("#result_list tbody tr")).to_have_count(5)

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    results = page.locator(".results")
    assert results.evaluate("r => r.scrollWidth <= r.clientWidth"), "the table scrolls sideways"
    heights = page.locator("#result_list tbody tr").evaluate_all(
        "rows => rows.map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 60, heights

    # Every header says its whole word, Duration included.
    headers = page.locator("#result_list thead th").evaluate_all(
        "ths => ths.map(th => [th.innerText.trim(), th.scrollWidth <= th.clientWidth])")
    assert [text.lower() for text, _ in headers][1:] == [
        "id", "status", "task", "queue", "attempts", "age", "duration", "last error"]
    assert all(fits for _, fits in headers), headers

    # The error is cut to its cell, on screen; its whole summary is the tooltip.
    error = page.locator("#result_list td.field-last_error_short .last-error").first
    box = error.evaluate("e => e.closest('td').getBoundingClientRect().right")
    assert box <= page.evaluate("window.innerWidth")
    assert error.get_attribute("title") == job.last_error
    assert js_errors == []


def test_the_failures_page_groups_each_note_with_its_resolve_action(page, js_errors):
    for _ in range(2):
        dead_job_with_a_long_error()
    page.goto(reverse("dashboard:failures"))
    note = page.get_by_label("Note", exact=True).first
    expect(note).to_be_visible()
    group = page.locator("form.with-note").first
    # The note is a field of the resolve form, labelled, with the resolve button in it...
    assert note.evaluate("n => n.form === n.closest('form.with-note')")
    expect(group.get_by_role("button", name="Resolve all 2")).to_be_visible()
    assert group.get_by_role("button", name="Requeue all 2 dead").count() == 0
    # ...and visibly so: a frame around note and button, the requeue button outside it.
    frame = group.bounding_box()
    requeue = page.get_by_role("button", name="Requeue all 2 dead").first.bounding_box()
    for inside in (note.bounding_box(), group.get_by_role("button").bounding_box()):
        assert frame["x"] <= inside["x"] and inside["x"] + inside["width"] <= \
            frame["x"] + frame["width"]
    assert requeue["x"] + requeue["width"] <= frame["x"]
    assert group.evaluate("g => getComputedStyle(g).borderTopStyle") == "solid"
    assert js_errors == []


def test_the_job_list_toolbar_groups_the_note_with_resolve(page, js_errors):
    dead_job_with_a_long_error()
    page.goto(reverse("dashboard:jobs"))
    group = page.get_by_role("group", name="Resolve dead letters with a note").last
    expect(group.get_by_label("Note for resolving dead letters")).to_be_visible()
    expect(group.get_by_role("button", name="Resolve dead letters")).to_be_visible()
    assert group.get_by_role("button", name="Cancel").count() == 0
    assert js_errors == []


CONTRAST = """el => {
    const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = c => { const [r, g, b] = rgb(c).map(v => { v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
    const style = getComputedStyle(el);
    const [a, b] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
    let faded = false;
    for (let n = el; n; n = n.parentElement) {
        if (Number(getComputedStyle(n).opacity) < 1) faded = true;
    }
    return {ratio: (a + 0.05) / (b + 0.05), faded};
}"""


def test_the_gone_badge_is_readable(page, js_errors):
    Cluster.objects.create(name="old-cluster", host="h2", pid=2, queues=["default"],
                           workers=2, last_seen_at=timezone.now() - timedelta(minutes=5))
    page.goto(reverse("dashboard:workers"))
    badge = page.locator(".badge-gone")
    expect(badge).to_have_text("Gone")
    seen = badge.evaluate(CONTRAST)
    assert seen["ratio"] >= 4.5 and not seen["faded"], seen
    assert js_errors == []


def test_the_job_filters_line_up_and_the_search_hint_fits(page, js_errors):
    page.goto(reverse("dashboard:jobs"))
    rows: dict[int, set[int]] = {}
    for field in page.locator("#filters .field").all():
        label = field.locator("label")
        if label.count():
            control = field.locator("input, select").first.bounding_box()
            rows.setdefault(round(control["y"]), set()).add(round(label.bounding_box()["y"]))
    assert len(rows) >= 2 and all(len(tops) == 1 for tops in rows.values()), rows
    search = page.get_by_label("Search")
    fits = search.evaluate("""i => {
        const s = getComputedStyle(i), ctx = document.createElement("canvas").getContext("2d");
        ctx.font = s.font;
        return ctx.measureText(i.placeholder).width <=
            i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    }""")
    assert fits, "the search placeholder is cut off"
    assert js_errors == []
