"""Tasks the embedded demo (manage.py rundemo) enqueues, and the README's examples."""

import time

from jobs.api import task
from jobs.context import current_job
from jobs.exceptions import PermanentError
from jobs.retry import Backoff

DEMO_BACKOFF = Backoff(base=1.0, factor=2.0, cap=5.0)


@task(name="demo.add")
def add(a: int, b: int) -> int:
    return a + b


@task(name="demo.build_report", backoff=DEMO_BACKOFF)
def build_report(report_id: int, rows: int = 100) -> dict:
    time.sleep(0.2)  # stands in for real work
    return {"report_id": report_id, "rows": rows}


@task(name="demo.flaky_fetch", max_attempts=4, backoff=DEMO_BACKOFF)
def flaky_fetch(url: str, fail_times: int = 1) -> str:
    """Fails its first `fail_times` tries, as a slow upstream would."""
    ctx = current_job()
    if ctx is not None and ctx.attempt_count <= fail_times:
        raise ConnectionError(f"upstream {url} timed out (demo failure {ctx.attempt_count})")
    return f"fetched {url}"


@task(name="demo.charge_card", max_attempts=2, backoff=DEMO_BACKOFF)
def charge_card(order_id: int) -> None:
    raise PermanentError(f"card for order {order_id} was declined <do-not-retry>")


@task(name="demo.import_feed", max_attempts=2, backoff=DEMO_BACKOFF)
def import_feed(feed: str) -> None:
    raise ValueError(f"feed {feed!r} has a malformed row 17: '<script>alert(1)</script>'")
