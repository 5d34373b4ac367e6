"""A 400 says why it was refused (jobs.views.bad_request), escaped and cut, on the
admin and the dashboard alike; Django's own suspicious-request refusals stay plain."""

import pytest
from django.urls import reverse

from jobs.views import MAX_REASON_CHARS
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    client.force_login(StaffFactory(username="root", is_superuser=True))
    return client


@pytest.mark.parametrize("url", [reverse("admin:jobs_job_changelist"), reverse("dashboard:jobs"),
                                 reverse("dashboard:tasks")])
def test_a_refused_parameter_is_named_on_the_400_page(root, url):
    response = root.get(url, {"queue": "a\x00b"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "parameter &#x27;queue&#x27; contains a NUL character" in body
    assert "nothing was changed" in body


def test_the_reason_is_escaped_and_bounded(root):
    response = root.get(reverse("dashboard:jobs"), {"<script>x" * 3: "y" * 100_001})
    body = response.content.decode()
    assert response.status_code == 400
    assert "<script>" not in body and "&lt;script&gt;" in body
    reason = body.split('class="reason">')[1].split("</p>")[0]
    assert len(reason) <= MAX_REASON_CHARS + 100  # escaping lengthens what is shown


def test_a_forged_host_keeps_the_plain_page(client, settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    response = client.get("/healthz", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "ALLOWED_HOSTS" not in response.content.decode()
    assert "The request was malformed" in response.content.decode()
