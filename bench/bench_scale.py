"""Scale-out and growth: drain with 1, 2 and 4 clusters, and the cost of a big table.

    .venv/bin/python bench/bench_scale.py [--quick] [--only scale|growth|cpu|profile] [--rows N]
        [--reps N] [--jobs N] [--keep]

scale   N no-op jobs drained by 1, 2 and 4 clusters (2 workers each, `qcluster --name`)
        on one PostgreSQL database (bench_scale); every job must end succeeded with
        exactly one attempt, or the run fails.
growth  the same measurements on two databases side by side: bench_growth_empty and
        bench_growth_full, the latter preloaded with --jobs finished jobs (bench/generate_jobs.py,
        3 attempts each, every unfinished one then marked succeeded): enqueue p50 (single
        calls, autocommit), the in-process claim rate (claim, run, succeed), and the
        drain of N jobs by one cluster. Goal (issue 13): no figure more than 10 % worse
        on the full database; the due-job indexes stay small (their sizes are printed).

cpu     one cluster draining no-op jobs: CPU time per job of each process (the
        cluster's workers, its other processes, the database's backends) over a 4 s
        window of the steady drain, read from /proc; 2 cores that are all busy make
        this, not waiting, what bounds the drain.

profile one cluster draining no-op jobs, sampled with py-spy (`make bench-peers` installs it)
        for 5 s, idle waits included: where a worker's time goes, by the innermost
        frame of this project or django-q2, waiting on the database or running Python.

Every figure is the median and min–max of --reps repetitions, the order rotated each
time, so load from other processes on this 2-core machine hits every variant alike.
Results: bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_core import (  # noqa: E402
    RESULTS,
    child_result,
    percentile,
    reset_tables,
    start_cluster,
    stop_cluster,
    wait_drained,
)

SERVER = "postgres://postgres@127.0.0.1:5432"
PREFIX = "SCALE_RESULT "
GROWTH_GOAL = 0.10  # at most 10 % worse with the big table


def url(db: str) -> str:
    return f"{SERVER}/{db}"


def env_for(db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SQLITE_TEST_NAME"}
    return {**env, "DATABASE_URL": url(db), "DJANGO_SETTINGS_MODULE": "config.settings",
            "JOBS_TASK_MODULES": "bench.tasks", "Q_WORKERS": "2", "PYTHONUNBUFFERED": "1"}


def fresh_database(db: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    manage(db, "migrate", "--noinput", "-v", "0")


def database_holds(db: str, rows: int) -> bool:
    """True if `db` exists and already holds `rows` generated jobs (for --keep)."""
    import psycopg

    try:
        with psycopg.connect(url(db)) as conn:
            return conn.execute("SELECT count(*) FROM jobs_job").fetchone()[0] >= rows
    except psycopg.Error:
        return False


def manage(db: str, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env_for(db),
                   check=True)


def child(db: str, phase: str, **params: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", phase,
           "--params", json.dumps(params)]
    return child_result(cmd, env_for(db), f"{phase} on {db}", PREFIX)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- scale ------------------------------------------------------------------------------


def scale(args: argparse.Namespace, jobs: int) -> dict[str, Any]:
    fresh_database("bench_scale")
    counts = [1, 2, 4]
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in counts}
    for rep in range(args.reps):
        for k in counts[rep % 3:] + counts[:rep % 3]:
            say(f"[scale] rep {rep + 1}/{args.reps}: {k} cluster(s)")
            runs[k].append(child("bench_scale", "drain", n=jobs, clusters=k))
    print(f"\n=== scale-out: {jobs} no-op jobs, 2 workers per cluster, one PostgreSQL "
          f"(2 shared cores), median (min–max) of {args.reps} ===")
    print(f"{'clusters':>8} {'workers':>8} {'drain jobs/s':>22} {'vs 1 cluster':>13}  checks")
    base = statistics.median(r["jobs_s"] for r in runs[1])
    table = {}
    for k in counts:
        s = summary([r["jobs_s"] for r in runs[k]])
        wrong = sum(r["wrong"] for r in runs[k])
        table[k] = {**s, "wrong": wrong}
        print(f"{k:>8} {2 * k:>8} {fmt(s):>22} {s['median'] / base:>13.2f}  "
              + ("every job succeeded once" if not wrong else f"FAIL: {wrong} jobs wrong"))
    return {"runs": runs, "table": table}


# --- growth -----------------------------------------------------------------------------


def growth(args: argparse.Namespace, jobs: int) -> dict[str, Any]:
    dbs = {"empty": "bench_growth_empty", "full": "bench_growth_full"}
    if args.keep and database_holds(dbs["full"], args.rows):
        say(f"[growth] --keep: reusing {dbs['full']} (migrated to this code)")
        for db in dbs.values():
            manage(db, "migrate", "--noinput", "-v", "0")
    else:
        for db in dbs.values():
            fresh_database(db)
        say(f"[growth] loading {args.rows} finished jobs into {dbs['full']}")
        t0 = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate_jobs.py"), "--jobs",
                        str(args.rows), "--attempts-per-job", "3", "--no-vacuum"],
                       cwd=ROOT, env=env_for(dbs["full"]), check=True)
        child(dbs["full"], "finish_all")
        say(f"[growth] loaded in {time.monotonic() - t0:.0f} s")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in dbs}
    for rep in range(args.reps):
        for key in (["empty", "full"] if rep % 2 == 0 else ["full", "empty"]):
            say(f"[growth] rep {rep + 1}/{args.reps}: {key}")
            got = child(dbs[key], "enqueue", n=300)
            got.update(child(dbs[key], "claim_rate", n=600))
            got.update(child(dbs[key], "drain", n=jobs, clusters=1))
            runs[key].append(got)
    sizes = child(dbs["full"], "sizes")
    print(f"\n=== growth: empty tables vs {sizes['jobs']:,} jobs and {sizes['attempts']:,} "
          f"attempts, median (min–max) of {args.reps} ===")
    print(f"{'metric':<26} {'empty':>22} {'full':>22} {'worse':>8}  goal: <= 10 % worse")
    table = {}
    for key, name, higher_better in (("enqueue_p50_ms", "enqueue p50 (ms)", False),
                                     ("claim_jobs_s", "claim rate (jobs/s)", True),
                                     ("jobs_s", "drain (jobs/s)", True)):
        empty = summary([r[key] for r in runs["empty"]])
        full = summary([r[key] for r in runs["full"]])
        # How much worse, as a share of the empty figure: a drop in throughput, a
        # rise in latency.
        worse = (1 - full["median"] / empty["median"] if higher_better
                 else full["median"] / empty["median"] - 1)
        verdict = "MET" if worse <= GROWTH_GOAL else "NOT MET"
        table[key] = {"empty": empty, "full": full, "worse": worse, "verdict": verdict}
        print(f"{name:<26} {fmt(empty):>22} {fmt(full):>22} {worse:>8.1%}  {verdict}")
    print("\nindexes of jobs_job on the full database:")
    for name, size, partial in sizes["indexes"]:
        print(f"  {name:<34} {size / 1024 / 1024:>9.1f} MB{'  (partial)' if partial else ''}")
    return {"runs": runs, "table": table, "sizes": sizes}


# --- cpu --------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu(args: argparse.Namespace) -> dict[str, Any]:
    fresh_database("bench_scale")
    got = child("bench_scale", "cpu", n=8000)
    print(f"\n=== CPU per job while one cluster drains ({got['jobs']} jobs in 4 s, "
          f"{got['jobs'] / 4:.0f} jobs/s, 2 workers) ===")
    for name, ms in got["ms_per_job"].items():
        print(f"{ms:6.3f} ms  {name}")
    print(f"{sum(got['ms_per_job'].values()):6.3f} ms  in all")
    return got


def phase_cpu(n: int) -> dict[str, Any]:
    from django.db import connection, transaction

    from jobs import enqueue
    from jobs.models import Attempt, Job, JobStatus

    def backends() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                           " AND pid <> pg_backend_pid()")
            return [row[0] for row in cursor.fetchall()]

    reset_tables()
    with transaction.atomic():
        for _ in range(n):
            enqueue("bench.noop")
    connection.close()
    proc, log = start_cluster("ours", "cpu")
    try:
        done = Job.objects.filter(status=JobStatus.SUCCEEDED)
        t0 = time.monotonic()
        while done.count() < n // 8 and time.monotonic() - t0 < 60:
            time.sleep(0.05)  # past start-up, into the steady drain
        pids = {*_tree(proc.pid), *backends()}
        before, machine_before, done_before = ({p: _cpu_seconds(p) for p in pids},
                                               _machine_busy(), done.count())
        time.sleep(4.0)
        done_after, machine_after = done.count(), _machine_busy()
        cluster, database = _tree(proc.pid), backends()
        # A worker django-q2 recycled (every 500 jobs) in the window: all of its
        # replacement's CPU, start-up included, belongs to the window.
        after = {p: _cpu_seconds(p) for p in {*cluster, *database}}
        workers = set(Attempt.objects.values_list("worker_pid", flat=True).distinct())
    finally:
        connection.close()
        stop_cluster(proc, log)
    jobs = done_after - done_before
    used = {p: after[p] - before.get(p, 0.0) for p in after}
    groups = {
        "cluster workers (claim, run, record)": [p for p in cluster if p in workers],
        "cluster, other processes (pusher, monitor, sentinel)":
            [p for p in cluster if p not in workers],
        "database backends": database,
    }
    table = {name: sum(used[p] for p in members) * 1000 / max(jobs, 1)
             for name, members in groups.items()}
    table["the rest of the machine, and processes gone in the window"] = max(
        (machine_after - machine_before) * 1000 / max(jobs, 1) - sum(table.values()), 0.0)
    return {"jobs": jobs, "ms_per_job": table}


def _machine_busy() -> float:
    """CPU seconds all cores spent not idle, so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def _tree(pid: int) -> list[int]:
    """The cluster's processes: pid and everything it started."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child_pid, parent in parents.items():
            if parent in tree and child_pid not in tree:
                tree.add(child_pid)
                grew = True
    return sorted(tree)


# --- profile ----------------------------------------------------------------------------


def profile(args: argparse.Namespace) -> dict[str, Any]:
    import collections
    import re
    import shutil

    # py-spy is installed with the peers (bench/peers/requirements.txt, `make bench-peers`).
    spy = next((str(p) for p in (ROOT / "bench" / "peers" / ".venv" / "bin" / "py-spy",
                                 Path(sys.executable).with_name("py-spy")) if p.exists()),
               shutil.which("py-spy"))
    if not spy:
        raise SystemExit("--only profile needs py-spy: `make bench-peers` installs it")
    fresh_database("bench_scale")
    child("bench_scale", "enqueue_many", n=8000)
    os.environ.update(env_for("bench_scale"))
    proc, log = start_cluster("ours", "profile")
    raw = RESULTS / "profile.txt"
    try:
        time.sleep(2.0)  # past start-up
        subprocess.run([spy, "record", "--idle", "--subprocesses", "--nonblocking", "--pid",
                        str(proc.pid), "--duration", "5", "--rate", "250", "--format", "raw",
                        "-o", str(raw)], check=True, capture_output=True)
    finally:
        stop_cluster(proc, log)
    where: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "django_q/worker.py" not in stack or "Thread._bootstrap" in stack:
            continue  # workers' main threads only
        # The statement helper names no statement: attribute its time to its caller.
        frames = [f for f in stack.split(";")
                  if (("jobs/" in f and "site-packages" not in f) or "django_q/" in f)
                  and "statements.py" not in f]
        inner = re.sub(r" \(.*?(\w+\.py):(\d+)\)", r" (\1:\2)", frames[-1]) if frames else "?"
        kind = "database" if "Connection.wait" in stack else "python"
        where[f"{kind:<8} {inner}"] += int(count)
    total = sum(where.values())
    print(f"\n=== where a worker's time goes (py-spy, {total} samples of 2 workers, idle "
          "included) ===")
    for name, n in where.most_common(15):
        print(f"{n / total:6.1%}  {name}")
    return {"top": where.most_common(30), "samples": total}


# --- children ---------------------------------------------------------------------------


def remove_bench_jobs() -> None:
    """Delete this benchmark's own jobs, and VACUUM so their dead index entries do not
    slow the next phase's queries (the preloaded rows stay)."""
    from django.db import connection

    from jobs.models import Job

    Job.objects.filter(task_name="bench.noop").delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM jobs_job, jobs_attempt")


def phase_enqueue(n: int) -> dict[str, Any]:
    from jobs import enqueue

    samples = []
    for _ in range(n + 30):
        t0 = time.perf_counter()
        enqueue("bench.noop")
        samples.append((time.perf_counter() - t0) * 1000)
    remove_bench_jobs()
    return {"enqueue_p50_ms": percentile(samples[30:], 0.5)}


def phase_enqueue_many(n: int) -> dict[str, Any]:
    from django.db import transaction

    from jobs import enqueue

    reset_tables()
    with transaction.atomic():
        for _ in range(n):
            enqueue("bench.noop")
    return {}


def phase_claim_rate(n: int) -> dict[str, Any]:
    """What one worker does per job (claim, run, succeed), in-process, jobs/s."""
    import logging

    from django.db import transaction

    from jobs import enqueue
    from jobs.worker.runner import execute

    logging.getLogger("jobs").setLevel(logging.WARNING)
    with transaction.atomic():
        ids = [str(enqueue("bench.noop").pk) for _ in range(n)]
    t0 = time.perf_counter()
    for pk in ids:
        execute(pk)
    rate = n / (time.perf_counter() - t0)
    remove_bench_jobs()
    return {"claim_jobs_s": rate}


def phase_drain(n: int, clusters: int) -> dict[str, Any]:
    from django.db import connection, transaction

    from jobs import enqueue
    from jobs.models import Attempt, Job, JobStatus

    big = Job.objects.exclude(task_name="bench.noop").exists()
    if not big:
        reset_tables()
    with transaction.atomic():
        for _ in range(n):
            enqueue("bench.noop")
    connection.close()
    procs = [start_cluster("ours", "scale", "--name", f"scale-{i}", "--queues", "default")
             for i in range(clusters)]
    t0 = time.monotonic()
    try:
        done, first_t, first_done, t_end = wait_drained(
            lambda: Job.objects.filter(task_name="bench.noop", status=JobStatus.SUCCEEDED).count(),
            n, t0, lambda: all(p.poll() is None for p, _ in procs), timeout=300)
    finally:
        connection.close()
        for proc, log in procs:
            stop_cluster(proc, log)
    ours = Job.objects.filter(task_name="bench.noop")
    once = Attempt.objects.filter(job__task_name="bench.noop").count()
    wrong = (n - ours.filter(status=JobStatus.SUCCEEDED, attempt_count=1).count()
             + abs(once - n))
    remove_bench_jobs()
    steady = (done - first_done) / (t_end - first_t) if first_t and t_end > first_t else 0.0
    return {"jobs_s": steady, "done": done, "wrong": wrong}


def phase_finish_all() -> dict[str, Any]:
    """Make every generated job terminal: the growth data set is history, not a backlog."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET status = 'succeeded', lease_owner = '',"
                       " lease_expires_at = NULL, reserved_until = NULL,"
                       " finished_at = COALESCE(finished_at, created_at)"
                       " WHERE status IN ('queued', 'running', 'retrying')")
        cursor.execute("UPDATE jobs_attempt SET status = 'succeeded' WHERE status = 'running'")
        cursor.execute("VACUUM ANALYZE")
    return {}


def phase_sizes() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jobs_job")
        jobs = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM jobs_attempt")
        attempts = cursor.fetchone()[0]
        cursor.execute(
            "SELECT c.relname, pg_relation_size(c.oid), i.indpred IS NOT NULL"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'jobs_job'::regclass ORDER BY 2 DESC")
        indexes = cursor.fetchall()
    return {"jobs": jobs, "attempts": attempts, "indexes": indexes}


def child_main(args: argparse.Namespace) -> None:
    import django

    django.setup()
    import bench.tasks  # noqa: F401 - registers bench.noop

    phases = {"enqueue": phase_enqueue, "enqueue_many": phase_enqueue_many,
              "claim_rate": phase_claim_rate, "drain": phase_drain,
              "finish_all": phase_finish_all, "sizes": phase_sizes, "cpu": phase_cpu}
    print(PREFIX + json.dumps(phases[args.child](**json.loads(args.params))), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small figures: a smoke run")
    parser.add_argument("--only", choices=["scale", "growth", "cpu", "profile"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rows", type=int, help="finished jobs preloaded (default 1,000,000)")
    parser.add_argument("--keep", action="store_true",
                        help="growth: reuse bench_growth_full if it already holds --rows jobs")
    parser.add_argument("--jobs", type=int, help="jobs per drain (default 3,000)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    args.rows = args.rows or (20_000 if args.quick else 1_000_000)
    jobs = args.jobs or (600 if args.quick else 3000)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    if args.only in (None, "scale"):
        out["scale"] = scale(args, jobs)
    if args.only in (None, "growth"):
        out["growth"] = growth(args, jobs)
    if args.only == "cpu":
        out["cpu"] = cpu(args)
    if args.only == "profile":
        out["profile"] = profile(args)
    (RESULTS / ("scale-quick.json" if args.quick else "scale.json")).write_text(
        json.dumps(out, indent=2, default=str))
    wrong = any(row["wrong"] for row in out.get("scale", {}).get("table", {}).values())
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
