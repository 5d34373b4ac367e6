"""What bench/peers/run.py and its PgBouncer section (bench/peers/pooled.py) share:
the server, the workers' role, each system's database, and how figures are printed."""

from __future__ import annotations

import statistics
import sys

from bench.peers.systems import ROOT, System

RESULTS = ROOT / "bench" / "results"
SERVER = "postgres://postgres@127.0.0.1:5432"
WORKER_ROLE = "bench_worker"


def db_name(system: System) -> str:
    return f"bench_peer_{system.db_slug}"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summary(values: list[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"median": statistics.median(present), "min": min(present), "max": max(present)}


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def spread(s: dict[str, float] | None) -> str:
    """A summary as `median (min–max)`."""
    return "-" if s is None else f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"
