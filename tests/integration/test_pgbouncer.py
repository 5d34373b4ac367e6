"""A real cluster behind a real PgBouncer in transaction pooling mode, with no setting.

Each test writes its own pgbouncer.ini and userlist, starts Debian's pgbouncer
(scripts/ensure-package.sh installs it) on a free port in front of the test
database, and runs a `manage.py qcluster` whose DATABASE_URL is the pooler.
Transaction pooling hands each transaction of a client connection to whichever
server connection is free: a statement prepared on one is unknown on the next
(`prepared statement "_pg3_0" does not exist`), and two clients' `_pg3_0` meet
on one server (`... already exists`). With `server_round_robin` every
transaction moves on. Every job must still succeed, and the pusher, which can
hear no notification through the pooler, must say so and poll.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from jobs import enqueue
from jobs.models import Job, JobStatus
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]

PGBOUNCER = "/usr/sbin/pgbouncer"
JOBS = 500
# Seconds for all of them: about 3 s are needed on a laptop, the rest is headroom
# for a loaded CI machine. Today's failure (a claim refused by the pooler) leaves a
# job reserved for JOBS_RESERVATION_SECONDS (30 s) before it is tried again.
DRAIN_BOUND = 25.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PgBouncer refuses to run as root: the user it switches to then (`-u`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root, and neither user postgres nor nobody exists for pgbouncer")


class PgBouncer:
    """One pgbouncer process in front of the test database, in its own directory."""

    def __init__(self, *, round_robin: bool, pool_size: int = 4) -> None:
        s = connection.settings_dict
        self.user = s.get("USER") or "postgres"
        self.dbname = s["NAME"]
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        run_as = _unprivileged_user()
        host, port = s.get("HOST") or "127.0.0.1", s.get("PORT") or 5432
        password = f" password={s['PASSWORD']}" if s.get("PASSWORD") else ""
        (self.dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        self.ini = self.dir / "pgbouncer.ini"
        self.ini.write_text(
            "[databases]\n"
            f"{self.dbname} = host={host} port={port} dbname={self.dbname}{password}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 200\n"
            f"default_pool_size = {pool_size}\n"
            f"server_round_robin = {1 if round_robin else 0}\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        if run_as is not None:  # its directory, for the log file
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, run_as.pw_uid, run_as.pw_gid)
        self.proc = subprocess.Popen([PGBOUNCER, *(["-u", run_as.pw_name] if run_as else []),
                                      str(self.ini)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(self._accepts, 10, interval=0.05):
            self.stop()
            pytest.fail(f"pgbouncer did not start on port {self.port}:\n{self.log()}")

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    def _accepts(self) -> bool:
        if self.proc.poll() is not None:
            return True  # exited: reported by the caller's check below
        try:
            with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1),
                                 connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def pgbouncer(on_postgres) -> Iterator[Callable[..., PgBouncer]]:
    assert on_postgres
    if not os.access(PGBOUNCER, os.X_OK):
        message = (f"{PGBOUNCER} is missing: run "
                   f"scripts/ensure-package.sh {PGBOUNCER} pgbouncer (make test does)")
        pytest.fail(message)  # a real part missing fails loudly, never skips
    started: list[PgBouncer] = []

    def start(**kwargs) -> PgBouncer:
        bouncer = PgBouncer(**kwargs)
        started.append(bouncer)
        assert bouncer.proc.poll() is None, bouncer.log()
        return bouncer

    yield start
    for bouncer in started:
        bouncer.stop()


def drains_behind(bouncer: PgBouncer, cluster_factory) -> None:
    ids = [enqueue("tests.noop").pk for _ in range(JOBS)]
    started = time.monotonic()
    cluster = cluster_factory(name="default", queues=["default"], workers=2,
                              env={"DATABASE_URL": bouncer.url})

    def counts() -> dict[str, int]:
        return {s: Job.objects.filter(pk__in=ids, status=s).count() for s in JobStatus}

    done = wait_for(lambda: counts()[JobStatus.SUCCEEDED] == JOBS, DRAIN_BOUND)
    elapsed = time.monotonic() - started
    log = cluster.log()
    assert done, (f"not all {JOBS} jobs succeeded within {DRAIN_BOUND} s behind pgbouncer: "
                  f"{ {k: v for k, v in counts().items() if v} }\n"
                  f"cluster log:\n{log[-4000:]}\npgbouncer log:\n{bouncer.log()}")
    assert "prepared statement" not in log, log[-4000:]
    assert "could not record" not in log and "Traceback" not in log, log[-4000:]
    # LISTEN cannot work through the pooler: the pusher said so, once, and polled.
    assert log.count("the LISTEN connection goes through a connection pooler") == 1, log[-4000:]
    print(f"{JOBS} jobs behind pgbouncer in {elapsed:.1f} s")


def test_a_cluster_behind_pgbouncer_in_transaction_mode_runs_every_job(pgbouncer,
                                                                        cluster_factory):
    drains_behind(pgbouncer(round_robin=False), cluster_factory)


def test_a_cluster_behind_pgbouncer_with_round_robin_runs_every_job(pgbouncer,
                                                                     cluster_factory):
    drains_behind(pgbouncer(round_robin=True), cluster_factory)
