"""MySQL and MariaDB are refused at start, by name, before anything is migrated or run.

On them the migrations would succeed while leaving out the conditional unique
constraint idempotent enqueue relies on, and then every claim would fail. Run against
a real server: MariaDB on 127.0.0.1:3306 (root, no password, database `test`), through
PyMySQL (tests/mysql_settings.py). A missing server fails the test: the refusal
must be shown against the real thing, with the server's own name and version.
"""

import os
import socket
import subprocess
import sys

import pytest

from tests.cluster import ROOT

pytestmark = pytest.mark.slow
MYSQL_URL = os.environ.get("JOBS_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def server_listening(host: str = "127.0.0.1", port: int = 3306) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def manage(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": MYSQL_URL,
           "DJANGO_SETTINGS_MODULE": "tests.mysql_settings", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def tables() -> list[str]:
    import pymysql

    with pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test") as conn:
        with conn.cursor() as cursor:
            cursor.execute("SHOW TABLES")
            return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("command", [["check"], ["migrate", "--noinput"], ["qcluster"]])
def test_mysql_is_refused_at_start_and_named(command):
    assert server_listening(), f"no MariaDB/MySQL answers at {MYSQL_URL} (this machine runs one)"
    before = tables()
    done = manage(*command)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "jobs.E012" in output and "DATABASES['default'] is mysql" in output, output
    assert "supports only PostgreSQL and SQLite" in output
    assert "is mysql (MariaDB " in output or "is mysql (MySQL " in output, output
    assert tables() == before  # nothing was migrated, no cluster registered
    # Refused before the command began its work: no migration applied, no cluster started.
    assert "Applying" not in output and "serves queue" not in output
