"""Tasks the embedded demo (manage.py rundemo) enqueues, and the README's examples."""

import time

from jobs import Backoff, PermanentError, current_job, task

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


# --- multi-step jobs for the dashboard ----------------------------------------

CATALOG_STEPS = ["download", "validate", "transform", "load", "publish"]


def _pause(seconds: float = 0.3) -> None:
    time.sleep(seconds)


def _download(feed: str) -> dict:
    _pause()
    return {"feed": feed, "rows": 1200}


def _validate(data: dict) -> dict:
    ctx = current_job()
    for i in range(0, data["rows"] + 1, 100):
        ctx.progress(i, data["rows"], f"row {i}")
        time.sleep(0.02)
    return {**data, "valid": data["rows"] - 3}


def _transform(data: dict, limits: dict) -> dict:
    _pause()
    if data["valid"] > limits["max_rows"]:
        raise ValueError(
            f"{data['valid']} rows exceed the transform limit max_rows={limits['max_rows']}; "
            "raise the step's limit and resume"
        )
    return {**data, "transformed": data["valid"]}


@task(name="demo.import_catalog", max_attempts=1, steps=CATALOG_STEPS)
def import_catalog(feed: str, max_rows: int = 5000) -> dict:
    """Five checkpointed steps; with a low max_rows it dies at "transform", resumable."""
    ctx = current_job()
    data = ctx.step("download", _download, feed)
    data = ctx.step("validate", _validate, data)
    data = ctx.step("transform", _transform, data, limits={"max_rows": max_rows})
    data = ctx.step("load", lambda d: {**d, "loaded": d["transformed"]}, data)
    return ctx.step("publish", lambda d: {"published": d["loaded"]}, data)


REBUILD_STEPS = ["scan", "tokenize", "index", "swap"]


def _chunked(label: str, total: int, seconds: float) -> dict:
    ctx = current_job()
    for done in range(0, total + 1, total // 20):
        ctx.progress(done, total, f"{label} {done}/{total}")
        time.sleep(seconds / 20)
    return {label: total}


@task(name="demo.rebuild_index", max_attempts=2, timeout=300, steps=REBUILD_STEPS)
def rebuild_index(name: str) -> dict:
    """About a minute in four steps with live progress: something to watch on the job page."""
    ctx = current_job()
    ctx.step("scan", _chunked, "documents", 40_000, 15)
    ctx.step("tokenize", _chunked, "tokens", 200_000, 20)
    ctx.step("index", _chunked, "postings", 80_000, 20)
    return ctx.step("swap", lambda: {"index": name, "swapped": True})
