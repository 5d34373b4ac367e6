"""A page shows a bounded preview of a long value, with a link to the whole of it:
one 1 MB argument must not make a 1 MB page."""

import json
import re

import pytest
from django.urls import reverse

from jobs.models import JobStatus
from jobs.ops.presentation import PREVIEW_CHARS
from tests.factories import AttemptFactory, JobFactory, StaffFactory

pytestmark = pytest.mark.django_db
BIG = "<b>" + "x" * 1_000_000


@pytest.fixture
def staff(client):
    client.force_login(StaffFactory(username="root", is_superuser=True))
    return client


def show_all_links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)">Show all \((\d+) more characters\)</a>', html)


@pytest.mark.parametrize("page", ["admin", "dashboard"])
def test_a_huge_argument_and_traceback_are_previewed_and_linked_in_full(staff, page):
    job = JobFactory(args=[BIG], status=JobStatus.DEAD)
    attempt = AttemptFactory(job=job, status="failed", error_class="ValueError",
                             error_message="bad", traceback="Traceback\n" + "y" * 50_000)
    url = (reverse("admin:jobs_job_change", args=[job.pk]) if page == "admin"
           else reverse("dashboard:job", args=[job.pk]))
    response = staff.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and len(html) < 200_000
    assert "&lt;b&gt;" in html and "<b>xxx" not in html  # escaped
    links = dict(show_all_links(html))
    assert len(links) >= 2, links  # the args and the traceback
    full = {link: staff.get(link) for link in links}
    bodies = [r.content.decode() for r in full.values()]
    assert all(r.status_code == 200 and r["Content-Type"].startswith("text/plain")
               for r in full.values())
    assert json.dumps([BIG], indent=2) in bodies
    assert attempt.traceback in bodies
    assert all(int(cut) > 0 for cut in links.values())


def test_a_short_value_is_shown_whole_with_no_link(staff):
    job = JobFactory(args=[1, 2])
    html = staff.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert "Show all" not in html and PREVIEW_CHARS > 100


@pytest.mark.parametrize("name", ["admin:jobs_value", "dashboard:value"])
@pytest.mark.parametrize(("kind", "field"), [("job", "lease_owner"), ("user", "password"),
                                             ("job", "args")])
def test_only_listed_fields_of_existing_rows_are_served(staff, name, kind, field):
    url = reverse(name, args=[kind, "00000000-0000-0000-0000-000000000000", field])
    assert staff.get(url).status_code == 404


def test_the_full_value_needs_the_right_to_view_jobs(client):
    job = JobFactory(args=[BIG])
    client.force_login(StaffFactory())  # staff without view_job
    assert client.get(reverse("admin:jobs_value", args=["job", job.pk, "args"])
                      ).status_code == 403
