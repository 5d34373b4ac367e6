"""The wheel installs into a project made by `django-admin startproject`, following the
README's "Add it to your project" word for word: the section's code blocks are read from
README.md and applied as written, so a wrong README fails this test.

Build the wheel (from a clean copy of the source, so no stale `build/` leaks into it) and
check it holds exactly the apps' files; make a fresh virtualenv and install the wheel there
(its dependencies come from the package index); start a project; apply the section (shell
lines run, file blocks appended or created); `check`; start the README's `qcluster` and
`runserver`; wait until the job the README enqueues has succeeded; then load the admin,
the dashboard and the status API as a superuser, and find the dashboard's static files.

Nothing here is skipped: a missing tool (venv, pip, the package index) fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.cluster import ROOT, wait_for

pytestmark = pytest.mark.slow
SECTION = "## Add it to your project"
APPS = ("jobs", "dashboard")
SERVERS = ("python manage.py runserver", "python manage.py qcluster")
# The file blocks' first line: `# path — action` (Python) or `{# path — action #}` (templates).
FILE_LINE = re.compile(r"^(?:#|\{#) (\S+) — (add at the end|create)(?: #\})?$")
UUID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
SUPERUSER = {"DJANGO_SUPERUSER_USERNAME": "ops", "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
             "DJANGO_SUPERUSER_PASSWORD": "an-ops-password-for-the-install-test"}
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "DATABASE_URL", "JOBS_", "Q_", "SQLITE_", "PYTHON",
                                  "VIRTUAL_ENV", "PIP_REQUIRE"))}
COPY_IGNORE = shutil.ignore_patterns(".*", "__pycache__", "*.pyc", "build", "dist", "*.egg-info",
                                     "test-artifacts", "*.sqlite3*", "node_modules")


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def readme_blocks(section: str) -> list[tuple[str, str]]:
    """(language, text) of every fenced block in the section, in order."""
    return re.findall(r"^```(\w+)\n(.*?)^```", section, flags=re.S | re.M)


def app_files() -> set[str]:
    """Every file of the two apps as the wheel should hold it (no caches, no dotfiles)."""
    found = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*"):
            rel = path.relative_to(ROOT)
            if path.is_file() and not any(p.startswith(".") or p == "__pycache__"
                                          for p in rel.parts) and path.suffix != ".pyc":
                found.add(rel.as_posix())
    return found


def run(*cmd: str | Path, cwd: Path, timeout: float = 300, env: dict | None = None) -> str:
    try:
        done = subprocess.run([str(c) for c in cmd], cwd=cwd, env={**CLEAN_ENV, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:  # a missing tool fails, loudly
        raise AssertionError(f"{cmd[0]} is missing: {exc}") from exc
    assert done.returncode == 0, (
        f"{[str(c)[:200] for c in cmd]} exited {done.returncode}:\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
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
        """SIGTERM to the main process, as a service manager sends it (a SIGTERM to every
        process of a cluster is what the qcluster docs say not to do), then SIGKILL to
        the whole group, for whatever is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()


def test_the_readme_installs_the_apps_into_a_new_project(tmp_path):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    # The README first: a section this test cannot follow fails before anything is built.
    section = readme_section()
    blocks = readme_blocks(section)
    assert blocks, "the README has no code in its install section"
    urls_block = next((text for _, text in blocks if text.startswith("# mysite/urls.py")), "")
    prefixes = dict((module, prefix) for prefix, module in re.findall(
        r'path\("([^"]*)", include\("(dashboard\.(?:api_)?urls)"\)\)', urls_block))
    assert set(prefixes) == {"dashboard.urls", "dashboard.api_urls"}, (
        f"the README's mysite/urls.py block must include dashboard.urls and "
        f"dashboard.api_urls:\n{urls_block}")

    # The wheel, built from a clean copy of the source: a stale build/lib would ship too.
    src, dist, venv, home = (tmp_path / d for d in ("src", "dist", "venv", "site"))
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, src,
        cwd=tmp_path)
    (wheel,) = dist.glob("truthful_jobs-*.whl")
    listing = run(sys.executable, "-m", "zipfile", "-l", wheel, cwd=tmp_path)
    shipped = {line.split()[0] for line in listing.splitlines()[1:] if line.strip()}
    shipped_files = {f for f in shipped if not f.split("/")[0].endswith(".dist-info")}
    expected = app_files()
    assert shipped_files == expected, (
        f"the wheel must hold exactly the files of {APPS}; missing: "
        f"{sorted(expected - shipped_files)}, extra: {sorted(shipped_files - expected)}")
    lap("wheel")

    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    home.mkdir()
    lap("venv")

    # Follow the section, block by block.
    servers: list[str] = []
    job_ids: list[str] = []
    for lang, text in blocks:
        if lang == "sh":
            for line in filter(None, (ln.strip() for ln in text.splitlines())):
                if line.startswith(SERVERS):
                    servers.append(line)  # started below, once every step before has run
                elif line == "pip install truthful-jobs":
                    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        wheel, cwd=home, timeout=600)
                    lap("pip install")
                    run(venv / "bin" / "django-admin", "startproject", "mysite", ".", cwd=home)
                elif line == "python manage.py createsuperuser":  # interactive: answer by env
                    run(python, "manage.py", "createsuperuser", "--noinput", cwd=home,
                        env=SUPERUSER)
                elif line.startswith("python manage.py "):
                    out = run(python, *shlex.split(line)[1:], cwd=home)
                    job_ids += UUID.findall(out)
                else:
                    raise AssertionError(f"the README asks for a command this test "
                                         f"does not know how to follow: {line!r}")
        else:
            first = text.splitlines()[0]
            match = FILE_LINE.match(first)
            assert match, f"a {lang} block must name its file and action: {first!r}"
            target = home / match.group(1)
            if match.group(2) == "create":
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            else:
                assert target.exists(), f"the README adds to {target.name}, which is not there"
                target.write_text(target.read_text() + "\n" + text)
    lap("README applied")
    assert sorted(servers) == sorted(SERVERS), servers
    assert len(job_ids) == 1, f"the README should enqueue one job and print its id: {job_ids}"
    job_id = str(uuid.UUID(job_ids[0]))
    run(python, "manage.py", "check", cwd=home)
    # "jobs" before "django_q": else django-q2's own qcluster runs, without our shutdown.
    qcluster_from = run(python, "manage.py", "shell", "-c",
                        "from django.core.management import get_commands; "
                        "print(get_commands()['qcluster'])", cwd=home).split()[-1]
    assert qcluster_from == "jobs", f"manage.py qcluster comes from {qcluster_from!r}"

    def job_row() -> tuple[str, str] | None:
        with sqlite3.connect(home / "db.sqlite3", timeout=5) as db:
            return db.execute("SELECT status, task_name FROM jobs_job WHERE id = ?",
                              [uuid.UUID(job_id).hex]).fetchone()

    assert job_row() is not None, f"job {job_id} is not in the new project's database"
    port = free_port()
    cluster = Background([str(python), "manage.py", "qcluster"], home, tmp_path / "qcluster.log")
    web = Background([str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                     home, tmp_path / "runserver.log")
    try:
        succeeded = wait_for(lambda: job_row()[0] == "succeeded", timeout=60, interval=0.3)
        assert succeeded, f"job {job_row()} after 60 s; qcluster said:\n{cluster.log()[-4000:]}"
        lap("job succeeded")

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
    lap("servers stopped")

    task_name = job_row()[1]
    script = (PAGES.replace("JOB_ID", job_id).replace("TASK_NAME", task_name)
              .replace("USERNAME", SUPERUSER["DJANGO_SUPERUSER_USERNAME"])
              .replace("DASHBOARD/", "/" + prefixes["dashboard.urls"])
              .replace("API/", "/" + prefixes["dashboard.api_urls"]))
    pages = run(python, "manage.py", "shell", "-c", script, cwd=home)
    assert "ALL PAGES OK" in pages, pages

    for static in sorted(f for f in expected if f.startswith("dashboard/static/")):
        name = static.removeprefix("dashboard/static/")
        found = run(python, "manage.py", "findstatic", name, cwd=home)
        assert str(venv) in found, (name, found)
    assert any("htmx" in f for f in expected if f.startswith("dashboard/static/"))
    lap("pages and static files")
    print("\ninstall test timings (s, cumulative):", timings)


# Run inside the new project's `manage.py shell`: the pages an operator opens, as a superuser.
PAGES = """
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()  # lets the test client's host, 'testserver', in
client = Client()
client.force_login(get_user_model().objects.get(username="USERNAME"))
for url, must_show in [
    ("/admin/", ['id="job-stats"', "Succeeded"]),  # the optional status panel
    ("/admin/jobs/job/", ["TASK_NAME", "Succeeded"]),
    ("/admin/jobs/job/JOB_ID/change/", ["TASK_NAME", "Succeeded"]),
    ("DASHBOARD/", ["Succeeded"]),
    ("DASHBOARD/jobs/", ["TASK_NAME", "Succeeded"]),
    ("DASHBOARD/jobs/JOB_ID/", ["TASK_NAME", "Succeeded"]),
    ("API/jobs/JOB_ID/status/", ['"status": "succeeded"']),
]:
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200, (url, response.status_code, body[:2000])
    for text in must_show:
        assert text in body, (url, text, body[:3000])
    print("OK", url)
print("ALL PAGES OK")
"""
