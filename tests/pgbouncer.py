"""A PgBouncer of its own, started on a free port: for tests/integration/test_pgbouncer.py
and for the PgBouncer section of bench/peers/run.py.

Debian's /usr/sbin/pgbouncer (scripts/ensure-package.sh installs it), its own
pgbouncer.ini, userlist and log in a temporary directory, in front of the
PostgreSQL server given. Neither Django nor pytest is imported here: the bench
runs this under the peers' virtualenv, which has only psycopg.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

PGBOUNCER = "/usr/sbin/pgbouncer"


class PgBouncerError(RuntimeError):
    """PgBouncer is missing, cannot run as root, or did not start."""


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
    raise PgBouncerError("running as root, and neither user postgres nor nobody exists "
                         "for pgbouncer")


class PgBouncer:
    """One pgbouncer process in transaction pooling mode, in its own directory.

    `databases` are served from the server at host:port under the same names;
    `users` may connect (trust); `admin_users` may also use the admin console
    (database `pgbouncer`: SHOW POOLS, SHOW CLIENTS, ...).
    """

    def __init__(self, databases: list[str], *, users: list[str], round_robin: bool = False,
                 pool_size: int = 4, admin_users: list[str] | None = None,
                 host: str = "127.0.0.1", port: int | str = 5432, password: str = "") -> None:
        if not os.access(PGBOUNCER, os.X_OK):
            raise PgBouncerError(f"{PGBOUNCER} is missing: run scripts/ensure-package.sh "
                                 f"{PGBOUNCER} pgbouncer (make test does)")
        self.user = users[0]
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        run_as = _unprivileged_user()
        secret = f" password={password}" if password else ""
        (self.dir / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        self.ini = self.dir / "pgbouncer.ini"
        self.ini.write_text(
            "[databases]\n"
            + "".join(f"{db} = host={host} port={port} dbname={db}{secret}\n" for db in databases)
            + "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 200\n"
            f"default_pool_size = {pool_size}\n"
            f"server_round_robin = {1 if round_robin else 0}\n"
            + (f"admin_users = {', '.join(admin_users)}\n" if admin_users else "")
            + f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        if run_as is not None:  # its directory, for the log file
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, run_as.pw_uid, run_as.pw_gid)
        self.proc = subprocess.Popen([PGBOUNCER, *(["-u", run_as.pw_name] if run_as else []),
                                      str(self.ini)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._accepts(databases[0]):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PgBouncerError(f"pgbouncer did not start on port {self.port}:\n"
                                     f"{self.log()}")
            time.sleep(0.05)

    def url(self, dbname: str, user: str | None = None) -> str:
        return f"postgres://{user or self.user}@127.0.0.1:{self.port}/{dbname}"

    def _accepts(self, dbname: str) -> bool:
        try:
            with psycopg.connect(self.url(dbname).replace("postgres://", "postgresql://", 1),
                                 connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def admin_connection(self, user: str | None = None) -> psycopg.Connection:
        """A connection to the admin console (database `pgbouncer`), for one of admin_users.

        The console speaks only the simple query protocol: a ClientCursor sends it.
        """
        url = self.url("pgbouncer", user).replace("postgres://", "postgresql://", 1)
        return psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)

    def admin(self, command: str, conn: psycopg.Connection | None = None) -> list[dict[str, Any]]:
        """One admin console command (`SHOW POOLS`, `KILL db`, ...), its rows as dicts."""
        if conn is None:
            with self.admin_connection() as conn:
                return self.admin(command, conn)
        cur = conn.execute(command)
        if cur.description is None:
            return []
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

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
