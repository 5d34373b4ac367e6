"""Dashboard queries on a big table: is every page still fast with a million jobs?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_dash .venv/bin/python \\
        bench/bench_dashboard.py [--rows 1000000]

PostgreSQL only (the database operators run in production). Migrates the
database, fills it to --rows jobs once (INSERT ... SELECT generate_series, so a
million rows take seconds), ANALYZEs, then times the queries behind each page
(best of 5, after a warm-up) and prints PostgreSQL's plan for each, flagging a
sequential scan of jobs_job that no LIMIT bounds. Results go to bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

FILL_SQL = """
INSERT INTO jobs_job (id, task_name, args, kwargs, queue, priority, status, attempt_count,
    max_attempts, last_attempt_number, run_after, lease_owner, last_error, created_at,
    started_at, finished_at, failure_cause, last_failed_at)
SELECT md5(random()::text || g)::uuid,
       (ARRAY['demo.add','demo.build_report','demo.import_catalog','demo.flaky_fetch'])[1 + g %% 4],
       '[]', '{}', (ARRAY['default','reports','emails'])[1 + g %% 3], 0,
       CASE WHEN g %% 1000 = 0 THEN 'dead' WHEN g %% 997 = 0 THEN 'queued'
            WHEN g %% 991 = 0 THEN 'retrying' ELSE 'succeeded' END,
       1, 3, 1, now() - g * interval '1 second', '',
       CASE WHEN g %% 1000 = 0 THEN 'ValueError: boom' ELSE '' END,
       now() - g * interval '1 second', now() - g * interval '1 second',
       now() - g * interval '1 second' + interval '2 seconds',
       CASE WHEN g %% 1000 = 0 OR (g %% 991 = 0 AND g %% 997 <> 0)
            THEN (ARRAY['ValueError: bad row <n> in ''…''', 'TimeoutError: upstream <n> timed out',
                        'KeyError: ''…''', 'ConnectionError: HTTP <n> from <email>'])[1 + g %% 4]
            ELSE '' END,
       CASE WHEN g %% 1000 = 0 OR (g %% 991 = 0 AND g %% 997 <> 0)
            THEN now() - g * interval '1 second' + interval '2 seconds' END
FROM generate_series(%s, %s) AS g
"""
# The failed attempt of every dead or retrying job: the failures page's samples.
ATTEMPTS_SQL = """
INSERT INTO jobs_attempt (job_id, number, status, started_at, finished_at, worker_host,
    worker_pid, error_class, error_message, traceback)
SELECT id, 1, 'failed', started_at, finished_at, 'bench', 1, split_part(failure_cause, ':', 1),
       'bad row 7', 'Traceback (most recent call last):' || chr(10) || failure_cause
FROM jobs_job WHERE status IN ('dead', 'retrying')
  AND NOT EXISTS (SELECT 1 FROM jobs_attempt a WHERE a.job_id = jobs_job.id)
"""


def fill(rows: int) -> None:
    from django.db import connection

    from jobs.models import Job

    have = Job.objects.count()
    if have >= rows:
        return
    print(f"filling jobs_job from {have} to {rows} rows ...", flush=True)
    with connection.cursor() as cur:
        cur.execute(FILL_SQL, [have + 1, rows])
        cur.execute(ATTEMPTS_SQL)
        cur.execute("ANALYZE jobs_job")
        cur.execute("ANALYZE jobs_attempt")


def timed(fn) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def plan(qs) -> str:
    return qs.explain()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    opts = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench_dashboard needs PostgreSQL: set DATABASE_URL")
    call_command("migrate", verbosity=0)
    fill(opts.rows)

    from django.db.models import Q

    from dashboard import queries
    from dashboard.forms import JobFilterForm
    from jobs.models import Job

    def page(params: dict[str, str]):
        form = JobFilterForm(params)
        assert form.is_valid(), form.errors
        return lambda: queries.job_page(queries.filter_jobs(form.cleaned_data),
                                        form.cleaned_data["after"], form.cleaned_data["size"])

    deep = Job.objects.order_by("-created_at", "-id").values_list("created_at", "id")[
        opts.rows // 2]
    cursor = queries.Cursor(*deep).encode()
    cases: dict[str, Any] = {
        "list: first page": page({}),
        "list: status=dead": page({"status": "dead"}),
        "list: queue=reports, last 24h": page({"queue": "reports", "last": "24h"}),
        "list: task + status": page({"task": "demo.flaky_fetch", "status": "retrying"}),
        "list: deep keyset page (middle of the table)": page({"after": cursor}),
        "list: search by idempotency key": page({"q": "no-such-key"}),
        "overview (all its queries)": queries.overview,
        "status counts (jobs.stats)": lambda: queries.stats.status_counts(),
    }
    cases.update({
        "list: one failure cause (a group's jobs)": page(
            {"task": "demo.add", "cause": "ValueError: bad row <n> in '…'"}),
        "list: unresolved dead letters": page({"status": "dead", "letter": "open"}),
        "list: search by the 8 digits shown": page({"q": "9f8e7d6c"}),
        "list: argument values (JSON containment)": page({"args": '{"user_id": 42}',
                                                          "task": "demo.add", "last": "24h"}),
    })
    # The new pages as the server answers them (middleware, queries, templates).
    from django.contrib.auth import get_user_model
    from django.test import Client

    from jobs.models import Cluster

    if not Cluster.objects.exists():
        for i in range(3):
            Cluster.objects.create(name=f"bench-{i}", host="bench", pid=i, queues=["default"],
                                   workers=4, pids=list(range(100 * i, 100 * i + 6)))
    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(admin)

    def get(url: str):
        def request():
            response = client.get(url, HTTP_HOST="localhost")
            assert response.status_code == 200, (url, response.status_code)
        return request

    for name, url in (("page: overview", "/dashboard/"), ("page: queues", "/dashboard/queues/"),
                      ("page: workers", "/dashboard/workers/"),
                      ("page: failures by cause", "/dashboard/failures/"),
                      ("page: tasks (last hour and day)", "/dashboard/tasks/"),
                      ("page: one task's figures", "/dashboard/tasks/demo.add/"),
                      ("page: activity (audit log)", "/dashboard/activity/"),
                      ("page: job list, one cause",
                       "/dashboard/jobs/?task=demo.add&cause=KeyError%3A+%27%E2%80%A6%27")):
        cases[name] = get(url)
    results = {}
    for name, fn in cases.items():
        ms = timed(fn)
        results[name] = round(ms, 2)
        print(f"{ms:9.2f} ms  {name}")

    plans = {
        "first page": Job.objects.order_by("-created_at", "-id")[:51],
        "status=dead": Job.objects.filter(status="dead").order_by("-created_at", "-id")[:51],
        "capped count": Job.objects.filter(status="succeeded").order_by().values("pk")[:1001],
        "deep keyset page": queries.filter_jobs({}).filter(
            created_at__lte=deep[0]).filter(Q(created_at__lt=deep[0]) | Q(id__lt=deep[1]))[:51],
    }
    print()
    for name, qs in plans.items():
        text = plan(qs)
        # A Seq Scan under a LIMIT stops at the limit; only an unbounded one is a problem.
        seq = "Seq Scan on jobs_job" in text and not text.startswith("Limit")
        print(f"--- plan: {name}{'  <-- SEQUENTIAL SCAN' if seq else ''}\n{text}\n")
    out = ROOT / "bench" / "results" / "dashboard.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": opts.rows, "best_of_5_ms": results}, indent=2))
    slow = {k: v for k, v in results.items() if v >= 300}
    print(f"wrote {out}; " + (f"OVER 300 ms: {slow}" if slow else "every figure under 300 ms"))


if __name__ == "__main__":
    main()
