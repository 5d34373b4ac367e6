"""Core benchmark: our Job-table broker vs plain django-q2 (ORM broker), side by side.

    .venv/bin/python bench/bench_core.py [--quick] [--db postgres|sqlite|both]

For each database (PostgreSQL: postgres://postgres@127.0.0.1:5432/bench_pg,
SQLite: a fresh file under bench/results/) it measures, for "ours"
(config.settings, broker jobs.worker.broker.JobTableBroker, `jobs.enqueue`) and
"plain" (bench.plain_settings, django-q2's ORM broker, `django_q.tasks.async_task`):

1. enqueue latency: p50/p99 of single enqueue calls of a no-op, in autocommit
   (pooled from alternating rounds of child processes);
2. drain throughput: N no-op jobs enqueued first, then a real `manage.py qcluster`
   (2 workers) is started; jobs/s from its start until all are done;
3. idle end-to-end latency: the cluster running and idle, one job at a time,
   from before the enqueue call until the job is seen finished (polled every 2 ms).

Both run the same Q_CLUSTER settings (workers, poll, bulk, retry, timeout) and the
same DATABASES entry (CONN_MAX_AGE, CONN_HEALTH_CHECKS); only the broker differs.

Each phase runs in a child process of this script (`--child ...`, selected by
DJANGO_SETTINGS_MODULE and DATABASE_URL) that prints one JSON line; this
orchestrator collects them, prints a table and writes bench/results/core.json.
A last phase (`--child sqlcount`; skip it with --no-sqlcount) counts the SQL
statements each implementation issues per job, in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_URL = "postgres://postgres@127.0.0.1:5432/bench_pg"
SQLITE_FILE = RESULTS / "bench_core.sqlite3"
SETTINGS = {"ours": "config.settings", "plain": "bench.plain_settings"}
RESULT_PREFIX = "BENCH_RESULT "

# Goals (ours/plain). Enqueue: lower is better; drain: higher is better.
ENQUEUE_GOAL, ENQUEUE_FLOOR = 1.0, 1.5
DRAIN_GOAL, DRAIN_FLOOR = 1.0, 0.7

FULL = {
    "enqueue_n": 2000,
    "enqueue_rounds": 4,
    "drain_n": {"postgres": 3000, "sqlite": 1500},
    "idle_n": 50,
}
QUICK = {
    "enqueue_n": 400,
    "enqueue_rounds": 2,
    # Above 250 so plain django-q2 reaches its steady state (save_limit pruning).
    "drain_n": {"postgres": 400, "sqlite": 400},
    "idle_n": 15,
}
DRAIN_TIMEOUT = 150.0
STOP_GRACE = 3.0


# --------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------


def db_url(db: str) -> str:
    return PG_URL if db == "postgres" else f"sqlite:///{SQLITE_FILE}"


def child_env(db: str, impl: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url(db),
        "DJANGO_SETTINGS_MODULE": SETTINGS[impl],
        "JOBS_TASK_MODULES": "bench.tasks",
        "Q_WORKERS": "2",
        "Q_CLUSTER_NAME": "default",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SQLITE_TEST_NAME", None)
    return env


def prepare_database(db: str) -> None:
    """A new, empty database for every run, so no earlier run (or schema) skews it."""
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
    else:
        import psycopg

        server, name = PG_URL.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=child_env(db, "ours"), check=True,
    )


def run_child(db: str, impl: str, phase: str, **params: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", phase,
           "--impl", impl, "--db", db, "--params", json.dumps(params)]
    return child_result(cmd, child_env(db, impl), f"child {phase}/{impl}/{db}")


def child_result(cmd: list[str], env: dict[str, str], what: str,
                 prefix: str = RESULT_PREFIX) -> dict[str, Any]:
    """Run a child process and return the JSON it printed after `prefix`."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")


def orchestrate(args: argparse.Namespace) -> int:
    cfg = QUICK if args.quick else FULL
    dbs = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {"quick": args.quick, "config": cfg, "dbs": {}}
    for db in dbs:
        print(f"[{db}] migrating", file=sys.stderr, flush=True)
        prepare_database(db)
        r: dict[str, dict[str, Any]] = {"ours": {}, "plain": {}}
        # Enqueue calls run in alternating rounds (ours, plain, plain, ours, ...) whose
        # samples are pooled, so bursts of load from other processes hit both alike.
        rounds = cfg["enqueue_rounds"]
        samples: dict[str, list[float]] = {"ours": [], "plain": []}
        for i in range(rounds):
            for impl in ("ours", "plain") if i % 2 == 0 else ("plain", "ours"):
                print(f"[{db}] enqueue {impl} round {i + 1}/{rounds}", file=sys.stderr,
                      flush=True)
                got = run_child(db, impl, "enqueue", n=cfg["enqueue_n"] // rounds)
                samples[impl] += got["samples_ms"]
        for impl in ("ours", "plain"):
            r[impl]["enqueue"] = latency_summary(samples[impl])
        for impl in ("plain", "ours"):
            print(f"[{db}] cluster {impl}", file=sys.stderr, flush=True)
            r[impl]["cluster"] = run_child(db, impl, "cluster", n=cfg["drain_n"][db],
                                           idle_n=cfg["idle_n"])
        if not args.no_sqlcount:
            for impl in ("ours", "plain"):
                print(f"[{db}] sqlcount {impl}", file=sys.stderr, flush=True)
                r[impl]["sqlcount"] = run_child(db, impl, "sqlcount", n=40)
        results["dbs"][db] = r
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    rows = table_rows(results)
    results["rows"] = rows
    print_table(rows)
    print(f"\n(total {results['elapsed_s']} s{', --quick' if args.quick else ''})")
    out = RESULTS / ("core-quick.json" if args.quick else "core.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    return 0 if all(row["verdict"] != "FAIL" for row in rows) else 1


def latency_summary(samples_ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(samples_ms),
        "p50_ms": percentile(samples_ms, 0.50),
        "p99_ms": percentile(samples_ms, 0.99),
        "mean_ms": statistics.fmean(samples_ms),
    }


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for db, r in results["dbs"].items():
        o, p = r["ours"], r["plain"]
        metrics = [
            ("enqueue p50 (ms)", o["enqueue"]["p50_ms"], p["enqueue"]["p50_ms"], "enqueue"),
            ("enqueue p99 (ms)", o["enqueue"]["p99_ms"], p["enqueue"]["p99_ms"], None),
            ("drain (jobs/s)", o["cluster"]["drain_jobs_s"], p["cluster"]["drain_jobs_s"],
             "drain"),
            ("drain excl. startup (jobs/s)", o["cluster"]["steady_jobs_s"],
             p["cluster"]["steady_jobs_s"], None),
            ("idle e2e p50 (ms)", o["cluster"]["idle_p50_ms"], p["cluster"]["idle_p50_ms"],
             None),
        ]
        if "sqlcount" in o:
            metrics.append(("SQL stmts/job (consume)", o["sqlcount"]["consume_per_job"],
                            p["sqlcount"]["consume_per_job"], None))
            metrics.append(("commits/job (consume)", o["sqlcount"]["consume_commits_per_job"],
                            p["sqlcount"]["consume_commits_per_job"], None))
            metrics.append(("health checks/job (consume)",
                            o["sqlcount"]["consume_health_checks_per_job"],
                            p["sqlcount"]["consume_health_checks_per_job"], None))
            metrics.append(("SQL stmts/job (enqueue)", o["sqlcount"]["enqueue_per_job"],
                            p["sqlcount"]["enqueue_per_job"], None))
            metrics.append(("health checks/job (enqueue)",
                            o["sqlcount"]["enqueue_health_checks_per_job"],
                            p["sqlcount"]["enqueue_health_checks_per_job"], None))
        for name, ours, plain, goal in metrics:
            ratio = ours / plain if ours is not None and plain else None
            verdict = "info"
            if goal == "enqueue":
                verdict = "PASS" if ratio is not None and ratio <= ENQUEUE_FLOOR else "FAIL"
            elif goal == "drain":
                complete = o["cluster"]["complete"] and p["cluster"]["complete"]
                ok = ratio is not None and ratio >= DRAIN_FLOOR and o["cluster"]["complete"]
                verdict = ("PASS" if ok else "FAIL") + ("" if complete else " (timed out)")
            rows.append({"db": db, "metric": name, "ours": ours, "plain": plain,
                         "ratio": ratio, "verdict": verdict})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    def fmt(v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"

    print(f"\n{'db':<9} {'metric':<30} {'ours':>9} {'plain':>9} {'ratio(ours/plain)':>18}"
          "  vs floor")
    for row in rows:
        print(f"{row['db']:<9} {row['metric']:<30} {fmt(row['ours']):>9} "
              f"{fmt(row['plain']):>9} {fmt(row['ratio']):>18}  {row['verdict']}")
    print(f"\ngoal: enqueue p50 ratio <= {ENQUEUE_GOAL} (floor {ENQUEUE_FLOOR}), "
          f"drain ratio >= {DRAIN_GOAL} (floor {DRAIN_FLOOR})")


# --------------------------------------------------------------------------------------
# Children (one phase each, Django configured from the environment)
# --------------------------------------------------------------------------------------


def child_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import bench.tasks  # noqa: F401 - registers bench.noop for enqueue()

    params = json.loads(args.params)
    phase = {"enqueue": phase_enqueue, "cluster": phase_cluster, "sqlcount": phase_sqlcount}
    result = phase[args.child](args.impl, args.db, **params)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def reset_tables() -> None:
    """Empty the job and django-q2 queue/result tables (nothing else runs meanwhile)."""
    from django.db import connection

    existing = set(connection.introspection.table_names())
    if connection.vendor == "postgresql":
        tables = [t for t in ("jobs_job", "jobs_attempt", "jobs_deadletter",
                              "django_q_ormq", "django_q_task") if t in existing]
        with connection.cursor() as cursor:
            # CASCADE also empties tables pointing at jobs_job (steps, schedules).
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
            cursor.execute("ANALYZE")
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys = OFF")
        if "jobs_schedule" in existing:
            cursor.execute("UPDATE jobs_schedule SET last_job_id = NULL")
        for table in ("jobs_step", "jobs_attempt", "jobs_deadletter", "jobs_job",
                      "django_q_ormq", "django_q_task"):
            if table in existing:
                cursor.execute(f"DELETE FROM {table}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def enqueuer(impl: str):  # noqa: ANN201
    """A zero-argument callable that enqueues one no-op and returns its id."""
    if impl == "ours":
        from jobs import enqueue

        return lambda: enqueue("bench.noop").pk
    from django_q.tasks import async_task

    return lambda: async_task("bench.tasks.noop_func")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def phase_enqueue(impl: str, db: str, n: int) -> dict[str, Any]:
    from django.db import connection

    reset_tables()
    put = enqueuer(impl)
    warmup = min(100, n // 5)
    for _ in range(warmup):  # warm up: connection, caches, first-call imports
        put()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        put()
        times.append(time.perf_counter() - t0)
    stored = _queued_count(impl)
    reset_tables()
    connection.close()
    if stored != n + warmup:
        raise RuntimeError(f"{stored} rows stored for {n + warmup} enqueue calls")
    return {"n": n, "samples_ms": [round(t * 1000, 4) for t in times]}


def _queued_count(impl: str) -> int:
    if impl == "ours":
        from jobs.models import Job

        return Job.objects.count()
    from django_q.models import OrmQ

    return OrmQ.objects.count()


def _done_count(impl: str, n: int) -> int:
    """How many of the n pre-enqueued jobs are finished.

    Ours: Job rows with status succeeded (the row is the job's whole state).
    Plain: n minus the rows left in django_q_ormq. The monitor deletes an OrmQ row
    (acknowledge) only after save_task() has stored the result, so an empty OrmQ
    means every task ran and was saved. Counting Task rows would not work: with
    django-q2's default save_limit=250 the monitor prunes successful tasks to 250.
    (OrmQ rows are only ever deleted on acknowledge: no failures, no re-delivery
    since retry=3600 s.)
    """
    if impl == "ours":
        from jobs.models import Job, JobStatus

        return Job.objects.filter(status=JobStatus.SUCCEEDED).count()
    from django_q.models import OrmQ

    return n - OrmQ.objects.count()


def _finished(impl: str, job_id: Any) -> bool:
    """Ours: the Job row says succeeded. Plain: the Task row (the result) exists."""
    if impl == "ours":
        from jobs.models import Job, JobStatus

        return Job.objects.filter(pk=job_id, status=JobStatus.SUCCEEDED).exists()
    from django_q.models import Task

    return Task.objects.filter(id=job_id).exists()


def start_cluster(impl: str, db: str, *args: str) -> tuple[subprocess.Popen, Any]:
    """A real `manage.py qcluster [args]` in its own process group, logging to a file."""
    name = "-".join([db, impl, *[a.lstrip("-") for a in args]])
    log = open(RESULTS / f"cluster-{name}.log", "wb")  # noqa: SIM115 - closed by caller
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster", *args],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: SIGKILL reaches every cluster process
    )
    return proc, log


def stop_cluster(proc: subprocess.Popen, log: Any) -> float:
    """SIGTERM the main process; SIGKILL the group if it is not gone in a few seconds."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (django-q2 may hang on shutdown)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    log.close()
    return time.monotonic() - t0


def phase_cluster(impl: str, db: str, n: int, idle_n: int) -> dict[str, Any]:
    from django.db import connection, transaction

    reset_tables()
    put = enqueuer(impl)
    with transaction.atomic():
        for _ in range(n):
            put()
    assert _queued_count(impl) == n
    connection.close()

    # --- drain: from cluster start until all n are done ---
    proc, log = start_cluster(impl, db)
    t0 = time.monotonic()
    try:
        done, first_done_t, first_done_count, t_end = wait_drained(
            lambda: _done_count(impl, n), n, t0, lambda: proc.poll() is None)
        complete = done >= n
        drain_s = t_end - t0
        steady = None
        if first_done_t is not None and t_end > first_done_t and done > first_done_count:
            steady = (done - first_done_count) / (t_end - first_done_t)
        failures = _failures(impl)

        # --- idle end-to-end latency, the cluster now idle ---
        time.sleep(1.0)
        latencies = []
        if complete and proc.poll() is None:
            reset_tables()
            for i in range(idle_n + 3):
                time.sleep(random.uniform(0.01, 0.08))  # decorrelate from the poll phase
                t_start = time.perf_counter()
                job_id = put()
                while not _finished(impl, job_id):
                    if time.perf_counter() - t_start > 30:
                        raise RuntimeError(f"idle job {job_id} not finished within 30 s")
                    time.sleep(0.002)
                if i >= 3:  # the first few are warm-up
                    latencies.append(time.perf_counter() - t_start)
    finally:
        connection.close()
        stop_s = stop_cluster(proc, log)
    return {
        "n": n,
        "done": done,
        "complete": complete,
        "failures": failures,
        "drain_s": drain_s,
        "drain_jobs_s": done / drain_s if drain_s else None,
        "startup_s": (first_done_t - t0) if first_done_t else None,
        "steady_jobs_s": steady,
        "idle_n": len(latencies),
        "idle_p50_ms": percentile(latencies, 0.5) * 1000 if latencies else None,
        "idle_p90_ms": percentile(latencies, 0.9) * 1000 if latencies else None,
        "stop_s": stop_s,
    }


def wait_drained(done_count: Any, n: int, t0: float, alive: Any,
                 timeout: float = DRAIN_TIMEOUT) -> tuple[int, float | None, int, float]:
    """Poll done_count() every 20 ms until n are done, the workers die or time runs out.

    Returns (done, when the first job was seen done, how many were done then, end),
    so throughput can be read with and without the start-up.
    """
    first_t, first_done, done = None, 0, 0
    while time.monotonic() - t0 < timeout and alive():
        done = done_count()
        if done and first_t is None:
            first_t, first_done = time.monotonic(), done
        if done >= n:
            break
        time.sleep(0.02)
    return done, first_t, first_done, time.monotonic()


def _failures(impl: str) -> int:
    if impl == "ours":
        from jobs.models import Job, JobStatus

        return Job.objects.exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.QUEUED,
                                               JobStatus.RUNNING]).count()
    from django_q.models import Task

    return Task.objects.filter(success=False).count()


def phase_sqlcount(impl: str, db: str, n: int) -> dict[str, Any]:
    """SQL statements per job, in-process, mimicking what the cluster's processes do.

    Ours: pusher `JobTableBroker.dequeue()` + worker `jobs.worker.runner.execute(id)` (the
    monitor does nothing for our packages: save=False, acknowledge is a no-op).
    Plain: pusher `ORM.dequeue()` + worker (close_old_connections, call) + monitor
    `save_task()` + `acknowledge()`. Counts statements passed to Django cursors
    (including BEGIN / SAVEPOINT statements Django issues itself), commits, and
    CONN_HEALTH_CHECKS probes (`SELECT 1` on PostgreSQL) separately.
    """
    import logging
    import pydoc

    from django.db import close_old_connections, connection
    from django.utils import timezone
    from django_q.humanhash import uuid
    from django_q.models import Task
    from django_q.signing import SignedPackage

    logging.getLogger("jobs").setLevel(logging.WARNING)
    reset_tables()
    if impl == "plain":
        # Steady state of a long drain: save_limit's 250 successful results exist,
        # so every save also prunes the oldest one.
        now = timezone.now()
        Task.objects.bulk_create([
            Task(id=uuid()[1], name=f"prefill-{i}", func="bench.tasks.noop_func", args=(),
                 kwargs={}, started=now, stopped=now, success=True, attempt_count=1)
            for i in range(250)
        ])
    put = enqueuer(impl)
    statements: list[str] = []
    # Commits: atomic blocks committed plus statements run in autocommit (each its own
    # transaction). On PostgreSQL with synchronous_commit=on each one waits for a WAL flush.
    commits = [0]
    real_commit = connection.commit

    def counting_commit() -> None:
        commits[0] += 1
        real_commit()

    connection.commit = counting_commit
    # CONN_HEALTH_CHECKS: after close_old_connections() the next query first runs
    # is_usable() (a `SELECT 1` round trip on PostgreSQL), which no cursor wrapper sees.
    health_checks = [0]
    real_is_usable = connection.is_usable

    def counting_is_usable() -> bool:
        health_checks[0] += 1
        return real_is_usable()

    connection.is_usable = counting_is_usable

    def count(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        kind = sql.split()[0].upper() if sql else "?"
        statements.append(kind)
        # SQLite's BEGIN IMMEDIATE starts an atomic block (counted at its commit).
        if not connection.in_atomic_block and kind != "BEGIN":
            commits[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        for _ in range(n):
            put()
    enqueue_statements = len(statements)
    enqueue_health_checks = health_checks[0]
    statements.clear()
    commits[0] = health_checks[0] = 0

    if impl == "ours":
        from jobs.worker.broker import JobTableBroker
        from jobs.worker.runner import execute

        JobTableBroker.run_maintenance = False
        broker = JobTableBroker(list_key="default")
    else:
        from django_q.brokers import get_broker
        from django_q.monitor import save_task

        broker = get_broker()
    processed = 0
    t0 = time.perf_counter()
    with connection.execute_wrapper(count):
        while processed < n:
            batch = broker.dequeue() or []
            for ack_id, payload in batch:
                task = SignedPackage.loads(payload)
                close_old_connections()
                if impl == "ours":
                    execute(*task["args"])
                else:
                    func = pydoc.locate(task["func"])
                    task["result"], task["success"] = func(*task["args"], **task["kwargs"]), True
                    task["stopped"] = timezone.now()
                    save_task(task, broker)
                    broker.acknowledge(ack_id)
                processed += 1
    elapsed = time.perf_counter() - t0
    kinds: dict[str, int] = {}
    for s in statements:
        kinds[s] = kinds.get(s, 0) + 1
    reset_tables()
    return {
        "n": n,
        "enqueue_per_job": enqueue_statements / n,
        "consume_per_job": len(statements) / processed,
        "consume_kinds_per_job": {k: v / processed for k, v in sorted(kinds.items())},
        "consume_commits_per_job": commits[0] / processed,
        "consume_health_checks_per_job": health_checks[0] / processed,
        "enqueue_health_checks_per_job": enqueue_health_checks / n,
        "consume_ms_per_job_in_process": elapsed / processed * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run")
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--no-sqlcount", action="store_true",
                        help="skip counting SQL statements per job (in-process)")
    parser.add_argument("--child", choices=["enqueue", "cluster", "sqlcount"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=["ours", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
