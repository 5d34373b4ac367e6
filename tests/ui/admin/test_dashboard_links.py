"""The admin leads to the dashboard where the project installed its URLs, and shows no
link (and no error) where it did not: the jobs app finds it by URL name only."""

import pytest
from django.contrib import admin
from django.urls import path, reverse

from tests.factories import JobFactory
from tests.ui.dashboard.factories import superuser

pytestmark = pytest.mark.django_db

# A project with the admin and without the dashboard (pytest.mark.urls below).
urlpatterns = [path("admin/", admin.site.urls)]


@pytest.fixture
def root(client):
    client.force_login(superuser())
    return client


def pages(job) -> dict[str, str]:
    """Each admin page with a dashboard link, and where that link must lead."""
    return {reverse("admin:jobs_job_changelist"): "/dashboard/jobs/",
            reverse("admin:jobs_job_change", args=[job.pk]): f"/dashboard/jobs/{job.pk}/",
            reverse("admin:app_list", args=["jobs"]): "/dashboard/",
            reverse("admin:index"): "/dashboard/"}  # the status panel (templates/admin)


def test_every_jobs_admin_page_links_to_the_matching_dashboard_page(root):
    job = JobFactory()
    for url, target in pages(job).items():
        html = root.get(url).content.decode()
        assert f'href="{target}"' in html, url


@pytest.mark.urls(__name__)
def test_without_the_dashboard_s_urls_the_admin_shows_no_link_and_no_error(root):
    job = JobFactory()
    for url in pages(job):
        response = root.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "/dashboard/" not in html and "dashboard-link" not in html, url
