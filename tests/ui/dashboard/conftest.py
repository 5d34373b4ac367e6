"""Fixtures for the dashboard: logged-in clients and a headless Chromium.

Browser tests drive Debian's /usr/bin/chromium through Playwright's own
driver; no browser is ever downloaded. A missing Chromium fails the tests
loudly: `make test` installs it (scripts/ensure-package.sh).
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.ui.dashboard.factories import superuser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Screenshots land in test-artifacts/ on every run; UPDATE_SCREENSHOTS=1 writes
# the README's copies in docs/screenshots/ instead (commit them afterwards).
_ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = (
    _ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS")
    else _ROOT / "test-artifacts" / "screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def ops(db):
    """A superuser: every action is available."""
    return superuser()


@pytest.fixture
def ops_client(ops) -> Client:
    client = Client()
    client.force_login(ops)
    return client


@pytest.fixture
def htmx_headers():
    return {"HX-Request": "true"}


@pytest.fixture(scope="module")
def browser():
    """One Chromium per browser test module.

    Playwright's sync API keeps an event loop running in this thread, which
    makes Django refuse ORM calls from the test body (SynchronousOnlyOperation)
    unless DJANGO_ALLOW_ASYNC_UNSAFE is set; it is set only while the browser lives.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-package.sh {CHROMIUM} "
                    "chromium (make test does)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught JavaScript errors of the page; tests assert it stays empty."""
    return []


@pytest.fixture
def page(browser, live_server, transactional_db, js_errors):
    """A page logged in as a superuser (session cookie, no login form round trip)."""
    user = superuser()
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(8000)
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    yield page
    context.close()
