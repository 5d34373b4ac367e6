"""What a newcomer meets on the overview, in headless Chromium with real clusters: a job
put in a queue no live cluster serves is named within one refresh, and a cluster killed
with kill -9 turns into the "No cluster is running" banner, both without a reload."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from jobs import enqueue
from jobs.core import clusters
from tests.cluster import wait_for
from tests.ui.dashboard.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REFRESH = 0.5  # the cluster registry's refresh: a killed cluster is gone after 1.5 s
POLL = 1.0  # the overview's refresh


@pytest.fixture
def fast(settings):
    settings.JOBS = {**getattr(settings, "JOBS", {}), "CLUSTER_REFRESH_SECONDS": REFRESH}
    settings.DASHBOARD_OVERVIEW_POLL_SECONDS = POLL
    return {"JOBS_CLUSTER_REFRESH_SECONDS": str(REFRESH)}


def test_a_job_in_a_queue_no_cluster_serves_is_named_within_one_refresh(
        page, js_errors, cluster_factory, on_postgres, fast):
    plain = cluster_factory(name="plain", env=fast, queues=["default"])
    assert wait_for(lambda: clusters.alive().count() == 1, timeout=30), plain.log()
    page.goto(reverse("dashboard:overview"))
    warning = page.locator("#unserved-queues")
    expect(page.locator("#no-cluster")).to_have_count(0)
    expect(warning).to_have_count(0)

    enqueue("tests.add", 1, 2, queue="reports")
    enqueued = time.monotonic()
    expect(warning).to_be_visible(timeout=int((POLL + 2) * 1000))
    assert time.monotonic() - enqueued < POLL + 2  # the next refresh, not a later one
    item = warning.locator('li[data-queue="reports"]')
    expect(item).to_contain_text("reports: 1 due")
    expect(item).to_contain_text("python manage.py qcluster --queues reports")
    expect(warning.locator('li[data-queue="default"]')).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "overview-unserved.png"), full_page=True)

    # A cluster for the queue runs the job: the warning goes, again without a reload.
    cluster_factory(name="reports", env=fast, queues=["reports"])
    expect(warning).to_have_count(0, timeout=30_000)
    assert js_errors == []


def test_a_killed_cluster_turns_into_the_no_cluster_banner(
        page, js_errors, cluster_factory, on_postgres, fast):
    doomed = cluster_factory(name="doomed", env=fast, queues=["default"])
    assert wait_for(lambda: clusters.alive().count() == 1, timeout=30), doomed.log()
    page.goto(reverse("dashboard:overview"))
    banner = page.locator("#no-cluster")
    expect(page.locator(".card .count").first).to_be_visible()
    expect(banner).to_have_count(0)

    doomed.kill()  # kill -9 of the whole cluster: its row just stops being refreshed
    killed = time.monotonic()
    expect(banner).to_be_visible(timeout=15_000)
    # Gone after three missed refreshes, shown at the next poll.
    assert time.monotonic() - killed < REFRESH * clusters.MISSED_REFRESHES + POLL + 3
    expect(banner).to_contain_text("No cluster is running")
    expect(banner.locator("code").first).to_have_text("python manage.py qcluster")
    page.screenshot(path=str(SCREENSHOTS / "overview-no-cluster.png"), full_page=True)
    assert js_errors == []
