"""The PgBouncer section of bench/peers/run.py: drains through a pooler in transaction mode.

run.py runs it after the direct PostgreSQL repetitions (skip it with --no-pgbouncer):

- one PgBouncer (tests/pgbouncer.py, the one tests/integration/test_pgbouncer.py
  starts) on a free port in front of every database-backed system's database:
  `pool_mode = transaction`, `default_pool_size` (--pool-size, 4) per database and
  role, `admin_users = postgres`;
- only the workers go through it (their DATABASE_URL, role bench_worker); the
  bench's own connection, which enqueues and counts, stays direct;
- per repetition, in an order rotated each time: a drain of N no-ops by ours and by
  each database-backed peer (django-tasks-db, Procrastinate, django-q2 ORM), and by
  ours with 2 and 4 clusters of WORKERS workers each (ours' own drain is the
  1-cluster row);
- before each drain the pool of that database is emptied (KILL and RESUME on the
  admin console), so the server connections counted are that drain's own; during
  it a sampler reads, every 0.1 s, the workers' server connections on that database
  (pg_stat_activity, role bench_worker) and the pooler's side (SHOW CLIENTS: the
  workers' client connections; SHOW POOLS: clients waiting for a server and the
  longest wait); the steady state (the count most samples saw while the workers
  were up) and the peaks are reported.

A system whose drain fails or does not finish through the pooler is reported with the
last lines of its workers' log, and not tried again in later repetitions.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from bench.peers.common import RESULTS, SERVER, WORKER_ROLE, db_name, fmt, say, spread, summary
from bench.peers.systems import BY_NAME, WORKERS, System
from tests.pgbouncer import PgBouncer

CLUSTERS = (1, 2, 4)
SAMPLE_EVERY = 0.1
# Issue 22: the drain still at least this many times the best database-backed peer's.
DRAIN_FLOOR = 1.5
# What one cluster holds (docs/deployment.md, "Connections per cluster"): 2 per worker + 4
# directly; behind a pooler the pusher closes its LISTEN connection once it sees the pooler.
PER_CLUSTER = 2 * WORKERS + 3

Drain = Callable[[System, str, int], dict[str, Any]]  # system, workers' URL, clusters


class Sampler(threading.Thread):
    """Peaks of one database's worker connections, on the server and at the pooler."""

    def __init__(self, bouncer: PgBouncer, db: str) -> None:
        super().__init__(daemon=True)
        self.bouncer, self.db = bouncer, db
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.samples: list[dict[str, float]] = []

    def run(self) -> None:
        try:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as pg, \
                    self.bouncer.admin_connection() as console:
                while not self.done.is_set():
                    self.sample(pg, console)
                    self.done.wait(SAMPLE_EVERY)
                self.sample(pg, console)
        except BaseException as error:  # noqa: BLE001 - handed to the orchestrator in stop()
            self.error = error

    def sample(self, pg: psycopg.Connection, console: psycopg.Connection) -> None:
        server = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                            " AND usename = %s", [self.db, WORKER_ROLE]).fetchone()[0]
        mine = [r for r in self.bouncer.admin("SHOW POOLS", console)
                if r["database"] == self.db and r["user"] == WORKER_ROLE]
        clients = sum(1 for r in self.bouncer.admin("SHOW CLIENTS", console)
                      if r["database"] == self.db and r["user"] == WORKER_ROLE)
        if clients:  # the workers are up
            self.samples.append({"server": server, "clients": clients,
                                 "waiting": sum(p["cl_waiting"] for p in mine),
                                 "maxwait_s": max((p["maxwait"] + p["maxwait_us"] / 1e6
                                                   for p in mine), default=0.0)})

    def stop(self) -> dict[str, Any]:
        """Peaks, and the steady state of the connections: the count most samples saw
        while the workers were up (a cluster's start opens and closes a connection)."""
        self.done.set()
        self.join(timeout=10)
        if self.error is not None:
            raise RuntimeError(f"sampling the connections of {self.db} failed") from self.error
        if not self.samples:
            return {}
        out = {f"{key}_peak": max(s[key] for s in self.samples) for key in self.samples[0]}
        for key in ("server", "clients"):
            out[f"{key}_steady"] = max(statistics.multimode(s[key] for s in self.samples))
        return out


def _log_tail(system: System, lines: int = 12) -> str:
    path = RESULTS / f"peers-{system.db_slug}-0.log"
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _one(bouncer: PgBouncer, system: System, clusters: int, drain: Drain) -> dict[str, Any]:
    db = db_name(system)
    bouncer.admin(f"KILL {db}")  # empty the pool: the server connections counted are ours
    bouncer.admin(f"RESUME {db}")
    sampler = Sampler(bouncer, db)
    sampler.start()
    try:
        result = drain(system, bouncer.url(db, WORKER_ROLE), clusters)
    finally:
        connections = sampler.stop()
    return {**result, "connections": connections}


def variants(systems: list[System]) -> list[tuple[str, System, int]]:
    """(label, system, clusters): every database-backed system, then ours' cluster counts."""
    out = [(s.name, s, 1) for s in systems if s.database_backed]
    ours = next((s for s in systems if s.ours), None)
    if ours:
        out += [(f"ours x{k}", ours, k) for k in CLUSTERS if k > 1]
    return out


def measure(systems: list[System], reps: int, pool_size: int, drain: Drain) -> dict[str, Any]:
    chosen = variants(systems)
    bouncer = PgBouncer(sorted({db_name(s) for _, s, _ in chosen}),
                        users=["postgres", WORKER_ROLE], admin_users=["postgres"],
                        pool_size=pool_size)
    version = bouncer.admin("SHOW VERSION")[0]["version"]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in chosen}
    unable: dict[str, str] = {}
    try:
        for rep in range(reps):
            for label, system, clusters in chosen[rep % len(chosen):] + chosen[:rep % len(chosen)]:
                if system.name in unable:
                    continue
                say(f"[pgbouncer] rep {rep + 1}/{reps}: {label}")
                try:
                    run = _one(bouncer, system, clusters, drain)
                except RuntimeError as error:
                    unable[system.name] = (f"{str(error)[-1500:]}\n"
                                           f"workers' log:\n{_log_tail(system)}")
                    continue
                if not run["complete"]:
                    unable[system.name] = (f"{run['failures']} of the jobs not finished\n"
                                           f"workers' log:\n{_log_tail(system)}")
                    continue
                runs[label].append(run)
    finally:
        bouncer.stop()
    return {"version": version, "pool_size": pool_size, "runs": runs, "unable": unable}


COUNTS = ("clients_steady", "clients_peak", "waiting_peak", "server_steady", "server_peak",
          "maxwait_s_peak")


def _range(values: list[float]) -> str:
    """The values over the repetitions: one figure when they agree, else lowest–highest."""
    def show(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else fmt(v)

    lo, hi = min(values), max(values)
    return show(lo) if lo == hi else f"{show(lo)}–{show(hi)}"


def _row(reps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"drain_jobs_s": summary([r["drain_jobs_s"] for r in reps]),
            **{key: [r["connections"][key] for r in reps] for key in COUNTS}}


def _held(row: dict[str, Any], what: str) -> str:
    """`steady/peak` of the clients or server connections, over the repetitions."""
    return f"{_range(row[f'{what}_steady'])}/{_range(row[f'{what}_peak'])}"


def report(result: dict[str, Any], direct: dict[str, Any], jobs: int) -> dict[str, Any]:
    """Print both tables and return them."""
    runs = {label: reps for label, reps in result["runs"].items() if reps}
    table = {label: _row(reps) for label, reps in runs.items()}

    def med(label: str) -> float | None:
        s = table.get(label, {}).get("drain_jobs_s")
        return s["median"] if s else None

    reps = max((len(r) for r in runs.values()), default=0)
    print(f"\n=== Through {result['version']}, transaction pooling, default_pool_size "
          f"{result['pool_size']}: the workers' connections pooled; {jobs} no-ops, "
          f"{WORKERS} workers per system, median (min–max) of {reps} ===")
    print(f"{'system':<16}{'drain jobs/s':>24}{'ours/peer':>11}{'vs direct':>11}"
          f"{'clients':>10}{'waiting':>9}{'server conns':>14}")
    systems = [label for label in table if " x" not in label]
    for label in systems:
        row, ours = table[label], med("ours")
        ratio = fmt(ours / med(label)) if ours and label != "ours" else ""
        plain = direct.get(label, {}).get("drain_jobs_s")
        vs_direct = fmt(med(label) / plain["median"]) if plain else "-"
        print(f"{label:<16}{spread(row['drain_jobs_s']):>24}{ratio:>11}{vs_direct:>11}"
              f"{_held(row, 'clients'):>10}{_range(row['waiting_peak']):>9}"
              f"{_held(row, 'server'):>14}")
    for name, why in result["unable"].items():
        print(f"{name:<16} cannot run through transaction pooling here:")
        print("    " + why.replace("\n", "\n    "))
    print("clients: the workers' client connections at PgBouncer (SHOW CLIENTS), server conns:\n"
          "their server connections (pg_stat_activity), both steady/peak (the count most\n"
          "samples saw / the highest, sampled every 0.1 s while the workers were up); waiting:\n"
          "most clients waiting for a server (SHOW POOLS cl_waiting). vs direct: pooled / this\n"
          "run's direct drain, which ran minutes earlier, not interleaved with it.")
    out: dict[str, Any] = {"systems": {label: table[label] for label in systems}}

    if "ours" in table:
        print(f"\n=== Ours through the same PgBouncer: 1, 2 and 4 clusters of {WORKERS} "
              f"workers, median (min–max) of {reps} ===")
        print(f"{'clusters':>8}{'workers':>8}{'drain jobs/s':>24}{'vs 1':>7}"
              f"{'clients':>10}{f'{PER_CLUSTER}/cluster':>11}{'waiting':>9}{'max wait s':>12}"
              f"{'server conns':>14}")
        clusters = {}
        for k in CLUSTERS:
            label = "ours" if k == 1 else f"ours x{k}"
            if label not in table:
                continue
            row = clusters[k] = table[label]
            print(f"{k:>8}{k * WORKERS:>8}{spread(row['drain_jobs_s']):>24}"
                  f"{fmt(med(label) / med('ours')):>7}{_held(row, 'clients'):>10}"
                  f"{k * PER_CLUSTER:>11}{_range(row['waiting_peak']):>9}"
                  f"{_range(row['maxwait_s_peak']):>12}{_held(row, 'server'):>14}")
        print(f"({PER_CLUSTER}/cluster: 2·W + 3 with W = {WORKERS}, what a cluster holds behind "
              "a pooler, its LISTEN connection closed once found pooled (docs/deployment.md);\n"
              " max wait s: SHOW POOLS maxwait, the oldest waiting client's wait, at any sample)")
        out["clusters"] = clusters
    return out


def verdicts(table: dict[str, Any], through: dict[str, Any] | None) -> list[str]:
    """Drain at least DRAIN_FLOOR x the best database-backed peer, direct (issue 22's
    goal); the same ratio through PgBouncer is reported beside it, with no goal."""
    def best_ratio(rows: dict[str, Any]) -> tuple[str, float] | None:
        drains = {n: r["drain_jobs_s"]["median"] for n, r in rows.items() if r["drain_jobs_s"]}
        peers = [n for n in drains if n != "ours" and BY_NAME[n].database_backed]
        if "ours" not in drains or not peers:
            return None
        best = max(peers, key=drains.__getitem__)
        return best, drains["ours"] / drains[best]

    lines = []
    for where, rows in (("direct", table), ("through PgBouncer", (through or {}).get("systems"))):
        got = best_ratio(rows) if rows else None
        if got and where == "direct":
            verdict = "MET" if got[1] >= DRAIN_FLOOR else "NOT MET"
            lines.append(f"drain {where} vs best database-backed peer ({got[0]}): {got[1]:.2f}x"
                         f" — at least {DRAIN_FLOOR}x {verdict}")
        elif got:
            lines.append(f"drain {where} vs best database-backed peer ({got[0]}): {got[1]:.2f}x"
                         " — reported, no goal")
    return lines
