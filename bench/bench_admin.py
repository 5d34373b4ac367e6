"""The job admin on a million jobs: is every common page under 300 ms?

    .venv/bin/python bench/bench_admin.py            # generates the data set once, then times
    .venv/bin/python bench/bench_admin.py --regenerate

Loads 1,000,000 jobs and 3,000,000 attempts (bench/dataset.py, as
`bench/generate_jobs.py` does) into
its own PostgreSQL database (default postgres://postgres@127.0.0.1:5432/bench_admin,
migrated here), skipping generation when the right counts are already there.
Then, logged in as a superuser through django.test.Client in this process
(server time: middleware, queries and template rendering, no network or
browser), each page gets one warm-up request and five timed ones; the table
shows the median against the budget. Results go to bench/results/admin.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_admin"
RESULTS = ROOT / "bench" / "results" / "admin.json"
REQUIRED = ("changelist (default)", "changelist ?status__exact=dead", "changelist ?q=<uuid>")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_ADMIN_DATABASE_URL",
                                                                 DEFAULT_URL))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--attempts-per-job", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true",
                        help="Empty the job tables and generate the data set again.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench_admin needs PostgreSQL (--database-url)")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)

    generation = ensure_data_set(args.jobs, args.attempts_per_job, args.regenerate)
    rows = time_pages(args.runs)

    print(f"\nAdmin on {args.jobs:,} jobs / {args.jobs * args.attempts_per_job:,} attempts "
          f"(PostgreSQL {connection.pg_version // 10000}), median of {args.runs} after a "
          f"warm-up, budget {args.budget_ms:.0f} ms")
    if generation is not None:
        print(f"data set generated in {generation:.1f} s")
    else:
        print("data set already loaded (generation skipped; --regenerate to time it)")
    width = max(len(r["page"]) for r in rows)
    print(f"\n{'page':<{width}}  {'median ms':>9}  {'min':>7}  {'max':>7}  {'queries':>7}  result")
    failed = False
    for r in rows:
        ok = r["median_ms"] <= args.budget_ms
        r["pass"] = ok
        failed |= (not ok) and r["page"] in REQUIRED
        mark = "PASS" if ok else "FAIL"
        star = " *" if r["page"] in REQUIRED else ""
        print(f"{r['page']:<{width}}  {r['median_ms']:>9.1f}  {r['min_ms']:>7.1f}  "
              f"{r['max_ms']:>7.1f}  {r['queries']:>7}  {mark}{star}")
    print("\n* required by the issue; the others are shown for information.")

    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "jobs": args.jobs,
        "attempts": args.jobs * args.attempts_per_job,
        "generation_seconds": generation if generation is not None
        else previous.get("generation_seconds"),
        "budget_ms": args.budget_ms,
        "runs": args.runs,
        "pages": rows,
    }, indent=2) + "\n")
    return 1 if failed else 0


def ensure_data_set(jobs: int, per_job: int, regenerate: bool) -> float | None:
    """Generate the data set unless it is already there; seconds spent, or None if skipped."""
    from django.db import connection

    from bench.dataset import generate
    from jobs.models import Attempt, Job

    if not regenerate and Job.objects.count() == jobs and \
            Attempt.objects.count() == jobs * per_job:
        return None
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_job, jobs_attempt, jobs_step, jobs_deadletter, "
                       "jobs_operationkey, jobs_schedule")
    started = time.monotonic()
    generate(jobs, per_job)
    return time.monotonic() - started


def time_pages(runs: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from jobs.models import DeadLetter, Job

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)

    jobs_url = reverse("admin:jobs_job_changelist")
    some_job = Job.objects.filter(status="dead").order_by().first()
    keyed = Job.objects.filter(idempotency_key__isnull=False).order_by().first()
    letter = DeadLetter.objects.order_by().first()
    pages = [
        ("changelist (default)", jobs_url),
        ("changelist ?status__exact=dead", f"{jobs_url}?status__exact=dead"),
        ("changelist ?q=<uuid>", f"{jobs_url}?q={some_job.pk}"),
        ("changelist ?q=<8-char id prefix>", f"{jobs_url}?q={str(some_job.pk)[:8]}"),
        ("changelist ?q=<idempotency key>", f"{jobs_url}?q={keyed.idempotency_key}"),
        ("changelist ?q=<task name>", f"{jobs_url}?q=reports.build"),
        ("changelist ?queue=critical", f"{jobs_url}?queue=critical"),
        ("changelist ?task=catalog.import", f"{jobs_url}?task=catalog.import"),
        ("changelist ?created=1h", f"{jobs_url}?created=1h"),
        ("changelist ?status=dead&queue=reports",
         f"{jobs_url}?status__exact=dead&queue=reports"),
        ("changelist page 2", f"{jobs_url}?p=2"),
        ("changelist last page (200)", f"{jobs_url}?p=200"),
        ("job detail (steps + attempts)", reverse("admin:jobs_job_change", args=[some_job.pk])),
        ("dead letters (unresolved first)", reverse("admin:jobs_deadletter_changelist")),
        ("dead letters ?resolved=no", reverse("admin:jobs_deadletter_changelist")
         + "?resolved=no"),
        ("dead letters ?task=reports.build", reverse("admin:jobs_deadletter_changelist")
         + "?task=reports.build"),
        ("dead letter detail", reverse("admin:jobs_deadletter_change", args=[letter.pk])),
        ("attempts (default)", reverse("admin:jobs_attempt_changelist")),
        ("attempts ?status__exact=lost", reverse("admin:jobs_attempt_changelist")
         + "?status__exact=lost"),
        ("steps (default)", reverse("admin:jobs_step_changelist")),
        ("admin home (status counts)", reverse("admin:index")),
    ]
    rows = []
    for name, url in pages:
        queries: list[str] = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):  # the warm-up, its queries counted
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        timings = []
        for _ in range(runs):
            t0 = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        rows.append({
            "page": name, "url": url,
            "median_ms": round(statistics.median(timings), 1),
            "min_ms": round(min(timings), 1), "max_ms": round(max(timings), 1),
            "queries": len(queries),
        })
    return rows


if __name__ == "__main__":
    sys.exit(main())
