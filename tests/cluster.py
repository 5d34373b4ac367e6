"""Real qcluster processes for tests, on the test database of the running suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """A DATABASE_URL for the database this test process is using right now."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if connection.vendor == "postgresql":
        user = s.get("USER") or "postgres"
        auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
        host, port = s.get("HOST") or "127.0.0.1", s.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{s['NAME']}"
    raise RuntimeError(f"no cluster support for {connection.vendor}")


class ClusterProcess:
    def __init__(self, name: str = "default", workers: int = 2, env: dict | None = None,
                 queues: list[str] | None = None, wrapper: list[str] | None = None):
        """A `manage.py qcluster --name NAME [--queues ...]`: without `queues` it serves
        the queue named like the cluster. `wrapper` runs it under another command, e.g.
        `["faketime", "-f", "+60s"]` for a cluster whose clock is a minute ahead."""
        self.log_path = ROOT / "test-artifacts" / f"qcluster-{name}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        full_env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "Q_WORKERS": str(workers),
            "Q_CLUSTER_NAME": name,
            "Q_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*(wrapper or []), sys.executable, str(ROOT / "manage.py"), "qcluster", "--name", name,
             *(["--queues", ",".join(queues)] if queues is not None else [])],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill -9 reaches workers too
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """kill -9 the whole cluster: master, sentinel, pusher, monitor, workers."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` for `timeout` seconds.

    The wait ends only when the clock says the time is up *and* enough polls were
    made to fill it: a VM's monotonic clock was seen to jump forward (a CI run's
    120 s wait ended within a second while the clusters were busy), and a jump
    must not cut a wait short.
    """
    deadline = time.monotonic() + timeout
    polls, enough = 0, timeout / interval
    while time.monotonic() < deadline or polls < enough:
        if predicate():
            return True
        time.sleep(interval)
        polls += 1
    return predicate()


def terminate_other_backends() -> int:
    """What a database restart does to its clients: end every other connection to the
    test database (PostgreSQL). Returns how many were ended."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]
