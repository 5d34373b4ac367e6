"""The wheel installs into a project made by `django-admin startproject`, following the
README's "Add it to your project" word for word: the section's code blocks are read from
README.md and applied as written, so a wrong README fails this test.

Build the wheel, make a fresh virtualenv, install it there (its dependencies come from
the package index), start a project, apply the section, migrate, enqueue the README's
task, run `qcluster` until the job succeeds, serve the site, and load the admin, the
dashboard and the status API.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cluster import ROOT, wait_for

pytestmark = pytest.mark.slow
SECTION = "## Add it to your project"
SERVERS = ("python manage.py runserver", "python manage.py qcluster")
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "DATABASE_URL", "JOBS_", "Q_", "SQLITE_", "PYTHON",
                                  "VIRTUAL_ENV"))}


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block in the section, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = min(i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1))
              if i != -1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end], flags=re.S)


def run(*cmd: str | Path, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Background:
    """A long-running command of the README, in its own process group."""

    def __init__(self, cmd: list[str], cwd: Path, log: Path) -> None:
        self.log_path, self._log = log, open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=CLEAN_ENV, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self._log.close()


def test_the_readme_installs_the_apps_into_a_new_project(tmp_path):
    started = time.monotonic()
    timings: dict[str, float] = {}
    dist, venv, home = tmp_path / "dist", tmp_path / "venv", tmp_path / "site"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT,
        cwd=tmp_path)
    (wheel,) = dist.glob("truthful_jobs-*.whl")
    shipped = run(sys.executable, "-m", "zipfile", "-l", wheel, cwd=tmp_path)
    tops = {line.split("/")[0] for line in shipped.splitlines()[1:] if line.strip()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"jobs", "dashboard"}, tops
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    home.mkdir()
    timings["wheel and venv"] = time.monotonic() - started

    blocks = readme_blocks()
    assert blocks, "the README has no code in its install section"
    servers: list[str] = []
    for lang, text in blocks:
        if lang == "sh":
            for line in filter(None, (ln.strip() for ln in text.splitlines())):
                if line.startswith(SERVERS):
                    servers.append(line)
                elif line == "pip install truthful-jobs":
                    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=home, timeout=600)
                    run(venv / "bin" / "django-admin", "startproject", "mysite", ".", cwd=home)
                    timings["pip install"] = time.monotonic() - started
                elif line.startswith("python manage.py "):
                    run(python, *line.split()[1:], cwd=home)
                else:
                    raise AssertionError(f"the README asks for a command this test "
                                         f"does not know how to follow: {line!r}")
        elif lang == "python":
            first = text.splitlines()[0]
            match = re.match(r"# (\S+) — (add at the end|create)$", first)
            assert match, f"a python block must name its file and action: {first!r}"
            target = home / match.group(1)
            if match.group(2) == "create":
                target.write_text(text)
            else:
                target.write_text(target.read_text() + "\n" + text)
    assert set(servers) == set(SERVERS), servers

    job_id = run(python, "manage.py", "shell", "-c",
                 "from jobs import enqueue; from reports.tasks import build; "
                 "print(enqueue(build, 42).pk.hex)", cwd=home).strip().splitlines()[-1]
    port = free_port()
    cluster = Background([str(python), "manage.py", "qcluster"], home, tmp_path / "qcluster.log")
    web = Background([str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                     home, tmp_path / "runserver.log")
    try:
        def status() -> str | None:
            with sqlite3.connect(home / "db.sqlite3", timeout=5) as db:
                row = db.execute("SELECT status FROM jobs_job WHERE id = ?", [job_id]).fetchone()
            return row[0] if row else None

        assert wait_for(lambda: status() == "succeeded", timeout=90, interval=0.5), (
            cluster.log()[-4000:])
        timings["job succeeded"] = time.monotonic() - started

        def login_page() -> int:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as resp:
                    return resp.status
            except OSError:
                return 0

        assert wait_for(lambda: login_page() == 200, timeout=30, interval=0.3), web.log()[-3000:]
    finally:
        cluster.stop()
        web.stop()

    pages = run(python, "manage.py", "shell", "-c", PAGES.replace("JOB_ID", job_id), cwd=home)
    assert "ALL PAGES OK" in pages, pages
    found = run(python, "manage.py", "findstatic", "dashboard/htmx-2.0.4.min.js", cwd=home)
    assert str(venv) in found
    timings["total"] = time.monotonic() - started
    print("install test timings (s):", {k: round(v, 1) for k, v in timings.items()})


# Run inside the new project's `manage.py shell`: the pages an operator opens.
PAGES = """
from uuid import UUID
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
job_id = UUID("JOB_ID")
user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
client = Client()
client.force_login(user)
for url, must_show in [
    ("/admin/", "Jobs"),
    ("/admin/jobs/job/", "reports.build"),
    (f"/admin/jobs/job/{job_id}/change/", "Succeeded"),
    ("/jobs/", "Succeeded"),
    (f"/jobs/jobs/{job_id}/", "reports.build"),
    (f"/api/jobs/{job_id}/status/", '"status": "succeeded"'),
]:
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200, (url, response.status_code, body[:2000])
    assert must_show in body, (url, must_show, body[:3000])
print("ALL PAGES OK")
"""
