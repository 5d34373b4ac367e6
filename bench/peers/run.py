"""This project against its peers, in one interleaved run on this machine.

    make bench-peers            # installs the peers into bench/peers/.venv, then runs this
    bench/peers/.venv/bin/python bench/peers/run.py [--quick] [--reps 3] [--jobs 5000]

Systems (bench/peers/systems.py): ours (the Job-table broker, project .venv),
django-tasks-db (`db_worker`), Procrastinate (Django integration), django-q2 (ORM
broker), Celery + Redis without and with django-celery-results (peers' .venv).
Each has its own PostgreSQL database (bench_peer_<name>), the same DATABASES
settings and 2 workers. Per repetition, in an order rotated each time, every
system is measured for:

1. enqueue latency: single no-op enqueues in autocommit, p50 and p99;
2. drain: N no-ops enqueued in one transaction, the workers started, jobs/s
   from the first finished job to the last (start-up is shown apart);
3. idle end-to-end: workers idle, one job at a time, from before the enqueue
   call until it is seen finished (polled every 2 ms).

Figures are the median and min–max over the repetitions. Then, untimed, one
more drain per system with `log_statement = all` set for the workers' role only
(bench_worker, on that system's database), counting the statements the server
logged per job. Then the physical reference: pgbench claiming with `FOR UPDATE
SKIP LOCKED` and marking done, one job and 50 jobs per claim. Then the drains
through PgBouncer in transaction pooling mode, of every database-backed system
and of ours with 1, 2 and 4 clusters, with the connections each held
(bench/peers/pooled.py; --no-pgbouncer skips them). Last, the systems that run
on SQLite (ours, django-tasks-db, django-q2), each on its own file.
Results: bench/results/peers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.bench_core import child_result, percentile, stop_cluster, wait_drained  # noqa: E402
from bench.peers import pooled  # noqa: E402
from bench.peers.common import (  # noqa: E402
    RESULTS,
    SERVER,
    WORKER_ROLE,
    db_name,
    fmt,
    say,
    spread,
    summary,
)
from bench.peers.systems import BY_NAME, PEERS_PY, SYSTEMS, WORKERS, System  # noqa: E402

PG_LOG = Path(os.environ.get("BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
RESULT_PREFIX = "PEERS_RESULT "
DRAIN_TIMEOUT = 300.0

FULL = {"jobs": 5000, "enqueue_n": 500, "idle_n": 40, "count_n": 1000, "sqlite_jobs": 1500}
QUICK = {"jobs": 600, "enqueue_n": 200, "idle_n": 15, "count_n": 300, "sqlite_jobs": 400}

# Goals of issue 13 (PostgreSQL unless said).
DRAIN_GOAL_DB, DRAIN_FLOOR_DB, DRAIN_GOAL_CELERY = 2.0, 1.3, 1.0
IDLE_GOAL_MS, IDLE_FLOOR_MS = 5.0, 10.0
STATEMENTS_GOAL = 5.0
SQLITE_ENQUEUE_P99_GOAL_MS = 3.0


# --------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------


def database_url(system: System, db: str, role: str = "postgres") -> str:
    if db == "sqlite":
        return f"sqlite:///{RESULTS / f'peers-{system.db_slug}.sqlite3'}"
    return f"postgres://{role}@127.0.0.1:5432/{db_name(system)}"


def child_env(system: System, db: str, worker_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "SQLITE_TEST_NAME", "DJANGO_SETTINGS_MODULE")}
    return {**env, **system.env(), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": database_url(system, db),
            # The workers connect as their own role: its statements are the ones counted.
            # Through PgBouncer (bench/peers/pooled.py) only the workers' URL is the pooler.
            "WORKER_DATABASE_URL": worker_url or database_url(system, db, WORKER_ROLE)}


def admin_sql(*statements: str, database: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/{database}", autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def prepare(system: System, db: str) -> None:
    """A new, empty database (or file) for the system, migrated by its own Django."""
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database_url(system, db)[len('sqlite:///'):]}{suffix}").unlink(missing_ok=True)
    else:
        name = db_name(system)
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    subprocess.run([*system.manage(), "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   env=child_env(system, db), check=True)


def run_child(system: System, db: str, phase: str, worker_url: str | None = None,
              **params: Any) -> dict[str, Any]:
    cmd = [str(system.python), str(Path(__file__).resolve()), "--child", phase,
           "--system", system.name, "--db", db, "--params", json.dumps(params)]
    return child_result(cmd, child_env(system, db, worker_url), f"{system.name}/{db}/{phase}",
                        RESULT_PREFIX)


def measure(systems: list[System], db: str, cfg: dict[str, Any], reps: int,
            jobs: int) -> dict[str, list[dict[str, Any]]]:
    """Every system once per repetition, the order rotated each time."""
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
    for rep in range(reps):
        order = systems[rep % len(systems):] + systems[:rep % len(systems)]
        for system in order:
            say(f"[{db}] rep {rep + 1}/{reps}: {system.name}")
            enq = run_child(system, db, "enqueue", n=cfg["enqueue_n"])
            drain = run_child(system, db, "drain", n=jobs, idle_n=cfg["idle_n"])
            runs[system.name].append({
                "enqueue_p50_ms": percentile(enq["samples_ms"], 0.5),
                "enqueue_p99_ms": percentile(enq["samples_ms"], 0.99),
                **drain,
            })
    return runs


def count_statements(systems: list[System], n: int) -> dict[str, dict[str, Any]]:
    """One untimed drain per system with the workers' statements logged, then counted."""
    if not os.access(PG_LOG, os.R_OK):
        say(f"cannot read the server log {PG_LOG} (set BENCH_PG_LOG): statements not counted")
        return {}
    counts = {}
    for system in systems:
        say(f"[postgres] statements: {system.name}")
        name = db_name(system)
        admin_sql(f'ALTER ROLE {WORKER_ROLE} IN DATABASE "{name}" SET log_statement = \'all\'')
        try:
            got = run_child(system, "postgres", "drain", n=n, idle_n=0, count_log=str(PG_LOG),
                            count_marker=f"{WORKER_ROLE}@{name} ")
        finally:
            admin_sql(f'ALTER ROLE {WORKER_ROLE} IN DATABASE "{name}" RESET log_statement')
        counts[system.name] = got["statements"]
    return counts


PGBENCH_SCRIPT = """\
UPDATE q SET status = 'running', owner = :client_id WHERE id IN (
  SELECT id FROM q WHERE status = 'queued' ORDER BY id LIMIT {batch} FOR UPDATE SKIP LOCKED);
UPDATE q SET status = 'done' WHERE owner = :client_id AND status = 'running';
"""


def pgbench_reference(quick: bool) -> dict[str, float]:
    """Claim-and-finish with nothing else: what this server can do at best."""
    import psycopg

    name = "bench_peer_pgbench"
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    out = {}
    for batch, per_client in ((1, 1500 if quick else 5000), (50, 60 if quick else 300)):
        rows = 2 * per_client * batch
        admin_sql(
            "DROP TABLE IF EXISTS q",
            "CREATE TABLE q (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'queued',"
            " owner int, payload jsonb NOT NULL DEFAULT '{}')",
            "CREATE INDEX q_due ON q (id) WHERE status = 'queued'",
            "CREATE INDEX q_owner ON q (owner) WHERE status = 'running'",
            f"INSERT INTO q (status) SELECT 'queued' FROM generate_series(1, {rows})",
            "VACUUM ANALYZE q", database=name)
        script = RESULTS / f"pgbench-claim-{batch}.sql"
        script.write_text(PGBENCH_SCRIPT.format(batch=batch))
        proc = subprocess.run([PGBENCH, "-n", "-c", "2", "-j", "2", "-t", str(per_client), "-f",
                               str(script), "-h", "127.0.0.1", "-U", "postgres", name],
                              capture_output=True, text=True, check=True)
        tps = float(re.search(r"tps = ([\d.]+)", proc.stdout).group(1))
        with psycopg.connect(f"{SERVER}/{name}") as conn:  # every row claimed and done
            done = conn.execute("SELECT count(*) FROM q WHERE status = 'done'").fetchone()[0]
        if done != rows:
            raise RuntimeError(f"pgbench finished {done} of {rows} rows (batch {batch})")
        out[f"claim_{batch}_jobs_s"] = tps * batch
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


METRICS = [  # key, heading, lower is better
    ("enqueue_p50_ms", "enqueue p50 ms", True),
    ("enqueue_p99_ms", "enqueue p99 ms", True),
    ("drain_jobs_s", "drain jobs/s", False),
    ("startup_s", "start-up s", True),
    ("idle_p50_ms", "idle e2e p50 ms", True),
]


def report(db: str, runs: dict[str, list[dict[str, Any]]], statements: dict[str, Any]) -> dict:
    table: dict[str, dict[str, Any]] = {}
    for name, reps in runs.items():
        table[name] = {key: summary([r[key] for r in reps]) for key, _, _ in METRICS}
        table[name]["complete"] = all(r["complete"] for r in reps)
        table[name]["failures"] = sum(r["failures"] for r in reps)
    ours = table.get("ours")
    print(f"\n=== {db}: {WORKERS} workers per system, median (min–max) over "
          f"{len(next(iter(runs.values())))} repetitions; ratio = ours / peer ===")
    head = f"{'system':<16}" + "".join(f"{h:>26}" for _, h, _ in METRICS)
    if statements:
        head += f"{'stmts/job':>11}"
    print(head)
    for name, row in table.items():
        cells = [spread(row[key]) for key, _, _ in METRICS]
        line = f"{name:<16}" + "".join(f"{c:>26}" for c in cells)
        if statements:
            line += f"{fmt(statements.get(name, {}).get('per_job')):>11}"
        if not row["complete"]:
            line += "  INCOMPLETE"
        print(line)
    if ours:
        print(f"{'ratio ours/peer':<16}")
        for name, row in table.items():
            if name == "ours":
                continue
            cells = []
            for key, _, _ in METRICS:
                a, b = ours[key], row[key]
                cells.append(fmt(a["median"] / b["median"]) if a and b and b["median"] else "-")
            print(f"  {name:<14}" + "".join(f"{c:>26}" for c in cells))
    return table


def verdicts(table: dict[str, Any], statements: dict[str, Any],
             sqlite: dict[str, Any] | None) -> list[str]:
    def med(name: str, key: str, t: dict[str, Any] = table) -> float | None:
        return t[name][key]["median"] if name in t and t[name][key] else None

    lines = []
    ours_drain = med("ours", "drain_jobs_s")
    db_peers = [n for n in table if n != "ours" and BY_NAME[n].database_backed]
    best = max(db_peers, key=lambda n: med(n, "drain_jobs_s") or 0, default=None)
    if ours_drain and best:
        r = ours_drain / med(best, "drain_jobs_s")
        lines.append(f"drain vs best database-backed peer ({best}): {r:.2f}x — goal "
                     f"{DRAIN_GOAL_DB}x {'MET' if r >= DRAIN_GOAL_DB else 'not met'}, floor "
                     f"{DRAIN_FLOOR_DB}x {'MET' if r >= DRAIN_FLOOR_DB else 'NOT MET'}")
    if ours_drain and med("celery", "drain_jobs_s"):
        r = ours_drain / med("celery", "drain_jobs_s")
        lines.append(f"drain vs Celery + Redis without records: {r:.2f}x — goal "
                     f"{DRAIN_GOAL_CELERY}x {'MET' if r >= DRAIN_GOAL_CELERY else 'not met'}")
    idle = med("ours", "idle_p50_ms")
    if idle is not None:
        lines.append(f"idle end-to-end p50: {idle:.1f} ms — goal {IDLE_GOAL_MS} ms "
                     f"{'MET' if idle <= IDLE_GOAL_MS else 'not met'}, floor {IDLE_FLOOR_MS} ms "
                     f"{'MET' if idle <= IDLE_FLOOR_MS else 'NOT MET'}")
    if "ours" in statements:
        per_job = statements["ours"]["per_job"]
        lines.append(f"worker statements per job: {per_job:.2f} — goal <= {STATEMENTS_GOAL} "
                     f"{'MET' if per_job <= STATEMENTS_GOAL else 'NOT MET'}")
    if sqlite and "ours" in sqlite and "django-tasks-db" in sqlite:
        ours_s = med("ours", "drain_jobs_s", sqlite)
        peer_s = med("django-tasks-db", "drain_jobs_s", sqlite)
        p99 = med("ours", "enqueue_p99_ms", sqlite)
        lines.append(f"SQLite drain vs django-tasks-db: {ours_s / peer_s:.2f}x — goal 1x "
                     f"{'MET' if ours_s >= peer_s else 'NOT MET'}")
        lines.append(f"SQLite enqueue p99: {p99:.2f} ms — goal <= {SQLITE_ENQUEUE_P99_GOAL_MS} "
                     f"ms {'MET' if p99 <= SQLITE_ENQUEUE_P99_GOAL_MS else 'NOT MET'}")
    return lines


def orchestrate(args: argparse.Namespace) -> int:
    if not PEERS_PY.exists():
        say("the peers are not installed: run `make bench-peers`")
        return 2
    cfg = dict(QUICK if args.quick else FULL)
    jobs = args.jobs or cfg["jobs"]
    systems = [BY_NAME[n] for n in args.systems] if args.systems else SYSTEMS
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    admin_sql(f"DO $$ BEGIN CREATE ROLE {WORKER_ROLE} LOGIN SUPERUSER;"
              f" EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    for system in systems:
        say(f"[postgres] preparing {system.name}")
        prepare(system, "postgres")
    out: dict[str, Any] = {"config": cfg, "jobs": jobs, "reps": args.reps}
    out["postgres_runs"] = measure(systems, "postgres", cfg, args.reps, jobs)
    out["statements"] = {} if args.no_count else count_statements(systems, cfg["count_n"])
    out["pgbench"] = None if args.no_pgbench else pgbench_reference(args.quick)
    if not args.no_pgbouncer:
        out["pgbouncer_runs"] = pooled.measure(
            systems, args.reps, args.pool_size,
            lambda system, url, clusters: run_child(system, "postgres", "drain", worker_url=url,
                                                    n=jobs, idle_n=0, clusters=clusters))
    sqlite_table = None
    if not args.no_sqlite:
        lite = [s for s in systems if s.sqlite]
        for system in lite:
            prepare(system, "sqlite")
        out["sqlite_runs"] = measure(lite, "sqlite", cfg, args.reps, cfg["sqlite_jobs"])
    print(f"\nbench/peers: {jobs} no-op jobs on PostgreSQL; the machine's cores are shared,"
          " so read ratios rather than absolute figures.")
    out["postgres"] = report("PostgreSQL", out["postgres_runs"], out["statements"])
    for name, st in out["statements"].items():
        kinds = ", ".join(f"{v:.2f} {k}" for k, v in st["kinds_per_job"].items() if v >= 0.01)
        print(f"  statements per job, {name}: {st['per_job']:.2f} ({kinds})")
    if out["pgbench"]:
        ref = out["pgbench"]
        ours = out["postgres"].get("ours", {}).get("drain_jobs_s")
        print(f"\npgbench reference (2 clients, SKIP LOCKED claim + done update): "
              f"{ref['claim_1_jobs_s']:.0f} jobs/s one per claim, "
              f"{ref['claim_50_jobs_s']:.0f} jobs/s fifty per claim"
              + (f"; ours is {ours['median'] / ref['claim_1_jobs_s']:.0%} of the first"
                 if ours else ""))
    if not args.no_pgbouncer:
        out["pgbouncer"] = pooled.report(out["pgbouncer_runs"], out["postgres"], jobs)
    if not args.no_sqlite:
        sqlite_table = report(f"SQLite ({cfg['sqlite_jobs']} jobs)", out["sqlite_runs"], {})
        out["sqlite"] = sqlite_table
    print("\nGoals (issue 13):")
    for line in verdicts(out["postgres"], out["statements"], sqlite_table):
        print(f"  {line}")
    print("Goals (issue 22):")
    out["goals_issue_22"] = pooled.verdicts(out["postgres"], out.get("pgbouncer"))
    for line in out["goals_issue_22"]:
        print(f"  {line}")
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    print(f"\n(total {out['elapsed_s']} s)")
    path = RESULTS / ("peers-quick.json" if args.quick else "peers.json")
    path.write_text(json.dumps(out, indent=2))
    print(f"results: {path.relative_to(ROOT)}")
    incomplete = [n for n, row in out["postgres"].items() if not row["complete"]]
    return 1 if incomplete else 0


# --------------------------------------------------------------------------------------
# Children: one phase of one system, run under that system's interpreter
# --------------------------------------------------------------------------------------


def start_workers(system: System, clusters: int) -> list[tuple[subprocess.Popen, Any]]:
    env = {**os.environ, "DATABASE_URL": os.environ["WORKER_DATABASE_URL"]}
    procs = []
    for i, cmd in enumerate(system.worker_commands(clusters)):
        log = open(RESULTS / f"peers-{system.db_slug}-{i}.log", "wb")  # noqa: SIM115
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True), log))
    return procs


def phase_enqueue(system: System, n: int) -> dict[str, Any]:
    from django.db import connection

    system.reset()
    put = system.enqueuer()
    for _ in range(min(50, n // 4)):  # warm up: connection, caches, first-call imports
        put()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        put()
        times.append((time.perf_counter() - t0) * 1000)
    system.reset()
    connection.close()
    return {"samples_ms": times}


def phase_drain(system: System, n: int, idle_n: int, count_log: str | None = None,
                count_marker: str = "", clusters: int = 1) -> dict[str, Any]:
    from django.db import connection, transaction

    system.reset()
    put = system.enqueuer()
    with transaction.atomic():
        for _ in range(n):
            put()
    log_start = os.path.getsize(count_log) if count_log else 0
    connection.close()
    workers = start_workers(system, clusters)
    t0 = time.monotonic()
    try:
        done, first_t, first_done, t_end = wait_drained(
            lambda: system.done_count(n), n, t0,
            lambda: all(p.poll() is None for p, _ in workers), DRAIN_TIMEOUT)
        if done < n and any(p.poll() is not None for p, _ in workers):
            raise RuntimeError(f"a worker of {system.name} exited; see bench/results/peers-*")
        statements = None
        if count_log:
            time.sleep(0.5)  # the last log lines of the last job
            statements = count_logged(count_log, log_start, count_marker, n)
        latencies = []
        if done >= n and idle_n:
            system.reset()
            time.sleep(1.0)
            for i in range(idle_n + 3):
                time.sleep(0.01 + (i % 7) * 0.01)  # decorrelate from any poll interval
                t_start = time.perf_counter()
                token = put()
                while not system.finished(token):
                    if time.perf_counter() - t_start > 30:
                        raise RuntimeError(f"idle job {token} of {system.name} not done in 30 s")
                    time.sleep(0.002)
                if i >= 3:
                    latencies.append((time.perf_counter() - t_start) * 1000)
        failures = n - done
    finally:
        connection.close()
        for proc, log in workers:
            stop_cluster(proc, log)
    steady = (done - first_done) / (t_end - first_t) if first_t and t_end > first_t else None
    return {"complete": done >= n, "failures": failures, "drain_jobs_s": steady,
            "startup_s": (first_t - t0) if first_t else None,
            "idle_p50_ms": percentile(latencies, 0.5) if latencies else None,
            "statements": statements}


STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): ?(.*)$")


def count_logged(path: str, start: int, marker: str, jobs: int) -> dict[str, Any]:
    """Statements the server logged for the workers' role on this database, per job.

    A statement whose text starts with a newline continues on the next log line,
    which has no prefix but a tab; its first word there names its kind.
    """
    with open(path, "rb") as f:
        f.seek(start)
        lines = f.read().decode("utf-8", "replace").splitlines()
    kinds: dict[str, int] = {}
    for i, line in enumerate(lines):
        if marker not in line or not (m := STATEMENT.search(line)):
            continue
        text = m.group(1).strip()
        if not text and i + 1 < len(lines) and lines[i + 1].startswith("\t"):
            text = lines[i + 1].strip()  # the statement began with a newline
        # An empty query (a driver's liveness probe) is a round trip too.
        kind = re.split(r"[\s(;]", text, maxsplit=1)[0].upper() if text else "(empty)"
        kinds[kind] = kinds.get(kind, 0) + 1
    total = sum(kinds.values())
    return {"total": total, "per_job": total / jobs,
            "kinds_per_job": {k: v / jobs for k, v in sorted(kinds.items())}}


def child_main(args: argparse.Namespace) -> None:
    import django

    django.setup()
    system = BY_NAME[args.system]
    params = json.loads(args.params)
    result = {"enqueue": phase_enqueue, "drain": phase_drain}[args.child](system, **params)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs: a smoke run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--jobs", type=int, help="jobs per drain on PostgreSQL")
    parser.add_argument("--systems", nargs="+", choices=list(BY_NAME), help="a subset")
    parser.add_argument("--no-count", action="store_true", help="skip counting statements")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench reference")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite runs")
    parser.add_argument("--no-pgbouncer", action="store_true",
                        help="skip the drains through PgBouncer (bench/peers/pooled.py)")
    parser.add_argument("--pool-size", type=int, default=4,
                        help="PgBouncer's default_pool_size (default 4)")
    parser.add_argument("--child", choices=["enqueue", "drain"], help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
