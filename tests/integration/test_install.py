"""The wheel installs into a project made by `django-admin startproject`, following the
README's "Add it to your project" word for word: the section's code blocks are read from
README.md and applied as written, so a wrong README fails this test.

Build the wheel once (from a clean copy of the source, so no stale `build/` leaks into it)
and check it holds exactly the apps' files. Then, for each supported combination below:
make a fresh virtualenv with its Python and install the wheel there (its dependencies,
Django among them, come from the package index); start a project; apply the sections
(shell lines run, file blocks appended or created); `check`; start the README's
`qcluster` and `runserver`; wait until every job the README enqueues has succeeded, and
run what the README runs once it has (reading a result by its id: the output must be what
the README says it prints); then load the admin, the dashboard and the status API as a
superuser, and find the dashboard's static files.

Both cases follow "Add it to your project" (its logging block included: the cluster's log
must name each job's task and id, without django-q2's per-job line; its install_schedules
step: the built-in schedules must exist afterwards), then "Or with Django's standard task
API" (a task declared with the framework's @task, enqueued, run by the cluster, its result
read back through the framework):

- Django 5.2 on this interpreter (the project's own .venv), through the django-tasks
  backport: the section's Django-5.2-only steps (the `tasks` extra, the backport's app,
  whose check of TASKS must then run), and `django_tasks` for `django.tasks`, as it says.
- Django 6.1 on pyenv's Python 3.13 (newest Django that Python gets).

Nothing here is skipped: a missing tool (venv, pip, pyenv's Python, the package index)
fails the test.
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
STANDARD_API = "### Or with Django's standard task API"
# Each case: the Django the README's `pip install` must bring, the Python of the new
# project's virtualenv (None: this one), and the README sections it follows, in order.
CASES = [
    pytest.param("5.2", None, (SECTION, STANDARD_API),
                 id=f"django5.2-py{sys.version_info[0]}.{sys.version_info[1]}"),
    pytest.param("6.1", "3.13", (SECTION, STANDARD_API), id="django6.1-py3.13"),
]
APPS = ("jobs", "dashboard")
SERVERS = ("python manage.py runserver", "python manage.py qcluster")
# The file blocks' first line: `# path — action` (Python) or `{# path — action #}` (templates),
# the action possibly for one Django only (`add at the end, on Django 5.2 only`).
FILE_LINE = re.compile(r"^(?:#|\{#) (\S+) — (add at the end|create)"
                       r"(?:, on Django (\d+\.\d+) only)?(?: #\})?$")
# A shell line for one Django only ends with this comment.
ONLY_ON = re.compile(r"\s+# on Django (\d+\.\d+) only$")
PIP = ["pip", "install", "truthful-jobs"]  # the wheel, in its place, with an extra if asked
BUILTIN_SCHEDULES = ("jobs.purge_finished", "jobs.dead_letter_alert")
UUID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
SUPERUSER = {"DJANGO_SUPERUSER_USERNAME": "ops", "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
             "DJANGO_SUPERUSER_PASSWORD": "an-ops-password-for-the-install-test"}
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "DATABASE_URL", "JOBS_", "Q_", "SQLITE_", "PYTHON",
                                  "VIRTUAL_ENV", "PIP_REQUIRE"))}
COPY_IGNORE = shutil.ignore_patterns(".*", "__pycache__", "*.pyc", "build", "dist", "*.egg-info",
                                     "test-artifacts", "*.sqlite3*", "node_modules")


def readme_section(heading: str) -> str:
    """The README from `heading` to the next heading of its level or above."""
    text = (ROOT / "README.md").read_text()
    assert heading in text, f"README.md has no {heading!r} section"
    start = text.index(heading)
    level = len(heading.split()[0])
    end = re.compile(rf"^#{{2,{level}}} ", flags=re.M).search(text, start + 1)
    return text[start:end.start() if end else len(text)]


def pyenv_python(version: str) -> Path:
    """The newest pyenv build of Python `version` (X.Y)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    builds = [p for p in root.glob(f"versions/{version}.*/bin/python")
              if re.fullmatch(rf"{re.escape(version)}\.\d+", p.parent.parent.name)]
    assert builds, f"no Python {version} under {root}/versions (pyenv install {version})"
    return max(builds, key=lambda p: int(p.parent.parent.name.rsplit(".", 1)[1]))


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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a clean copy of the source: a stale build/lib would ship too."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, src, cwd=tmp)
    (built,) = dist.glob("truthful_jobs-*.whl")
    return built


def test_the_wheel_holds_exactly_the_apps_files(wheel):
    listing = run(sys.executable, "-m", "zipfile", "-l", wheel, cwd=wheel.parent)
    shipped = {line.split()[0] for line in listing.splitlines()[1:] if line.strip()}
    shipped_files = {f for f in shipped if not f.split("/")[0].endswith(".dist-info")}
    expected = app_files()
    assert shipped_files == expected, (
        f"the wheel must hold exactly the files of {APPS}; missing: "
        f"{sorted(expected - shipped_files)}, extra: {sorted(shipped_files - expected)}")


@pytest.mark.parametrize(("django", "python_version", "headings"), CASES)
def test_the_readme_installs_the_apps_into_a_new_project(tmp_path, wheel, django,
                                                         python_version, headings):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    # The README first: a section this test cannot follow fails before anything is made.
    sections = [readme_section(heading) for heading in headings]
    blocks = [readme_blocks(section) for section in sections]
    assert all(blocks), f"a section of {headings} has no code"
    urls_block = next((text for _, text in blocks[0] if text.startswith("# mysite/urls.py")), "")
    prefixes = dict((module, prefix) for prefix, module in re.findall(
        r'path\("([^"]*)", include\("((?:dashboard|jobs)\.urls)"\)\)', urls_block))
    assert set(prefixes) == {"dashboard.urls", "jobs.urls"}, (
        f"the README's mysite/urls.py block must include dashboard.urls and "
        f"jobs.urls:\n{urls_block}")

    venv, home = tmp_path / "venv", tmp_path / "site"
    run(pyenv_python(python_version) if python_version else sys.executable, "-m", "venv", venv,
        cwd=tmp_path)
    python = venv / "bin" / "python"
    home.mkdir()
    lap("venv")

    # Follow the sections, block by block. Each enqueues one job and prints its id; a
    # line with `<id>` in it runs once that job has succeeded, on its id.
    servers: list[str] = []
    job_ids: list[list[str]] = [[] for _ in sections]
    afterwards: list[tuple[int, str]] = []
    followed: list[str] = []  # the manage.py commands run, in order
    for n, section_blocks in enumerate(blocks):
        for lang, text in section_blocks:
            if headings[n] == STANDARD_API and django == "5.2":
                # As the section says: the backport's module wherever django.tasks is written.
                text = text.replace("django.tasks", "django_tasks")
            if lang == "text":
                continue  # what a command prints, shown: nothing to follow
            if lang == "sh":
                for line in filter(None, (ln.strip() for ln in text.splitlines())):
                    only = ONLY_ON.search(line)
                    if only:
                        if only.group(1) != django:
                            continue
                        line = line[:only.start()]
                    if line.startswith(SERVERS):
                        servers.append(line)  # started below, once every step before has run
                    elif "<id>" in line:
                        afterwards.append((n, line))
                    elif shlex.split(line) in (PIP, [*PIP[:2], "truthful-jobs[tasks]"]):
                        extra = shlex.split(line)[2].removeprefix("truthful-jobs")
                        run(python, "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", f"{wheel}{extra}", cwd=home,
                            timeout=600)
                        lap(f"pip install{extra}")
                        installed = run(python, "-c", "import django; print(django.get_version())",
                                        cwd=home).strip()
                        assert installed.startswith(f"{django}."), (
                            f"pip brought Django {installed} to this Python, not {django}")
                    elif line == "django-admin startproject mysite .":
                        run(venv / "bin" / "django-admin", *shlex.split(line)[1:], cwd=home)
                    elif line == "python manage.py createsuperuser":  # interactive: by env
                        run(python, "manage.py", "createsuperuser", "--noinput", cwd=home,
                            env=SUPERUSER)
                    elif line.startswith("python manage.py "):
                        out = run(python, *shlex.split(line)[1:], cwd=home)
                        followed.append(line)
                        job_ids[n] += UUID.findall(out)
                    else:
                        raise AssertionError(f"the README asks for a command this test "
                                             f"does not know how to follow: {line!r}")
            else:
                first = text.splitlines()[0]
                match = FILE_LINE.match(first)
                assert match, f"a {lang} block must name its file and action: {first!r}"
                if match.group(3) and match.group(3) != django:
                    continue
                target = home / match.group(1)
                if match.group(2) == "create":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text)
                else:
                    assert target.exists(), f"the README adds to {target.name}, which is not there"
                    target.write_text(target.read_text() + "\n" + text)
    lap("README applied")
    assert sorted(servers) == sorted(SERVERS), servers
    assert all(len(ids) == 1 for ids in job_ids), (
        f"each section should enqueue one job and print its id: {job_ids}")
    ids = [str(uuid.UUID(found[0])) for found in job_ids]
    job_id = ids[0]
    run(python, "manage.py", "check", cwd=home)
    # The built-in schedules exist because the README ran install_schedules.
    assert "python manage.py install_schedules" in followed, followed
    listed = run(python, "manage.py", "schedules", "list", cwd=home)
    for name in BUILTIN_SCHEDULES:
        assert re.search(rf"^{re.escape(name)}  \[enabled\]", listed, flags=re.M), listed
    if django == "5.2":
        # The backport's app, as the README adds it: its check of TASKS runs on `check`.
        registered = run(python, "manage.py", "shell", "-c",
                         "from django.core.checks.registry import registry; "
                         "print(sorted({c.__module__ for c in registry.get_checks()}))",
                         cwd=home)
        assert "'django_tasks.checks'" in registered, registered
    # "jobs" before "django_q": else django-q2's own qcluster runs, without our shutdown.
    qcluster_from = run(python, "manage.py", "shell", "-c",
                        "from django.core.management import get_commands; "
                        "print(get_commands()['qcluster'])", cwd=home).split()[-1]
    assert qcluster_from == "jobs", f"manage.py qcluster comes from {qcluster_from!r}"

    def job_row(pk: str) -> tuple[str, str] | None:
        with sqlite3.connect(home / "db.sqlite3", timeout=5) as db:
            return db.execute("SELECT status, task_name FROM jobs_job WHERE id = ?",
                              [uuid.UUID(pk).hex]).fetchone()

    for pk in ids:
        assert job_row(pk) is not None, f"job {pk} is not in the new project's database"
    port = free_port()
    cluster = Background([str(python), "manage.py", "qcluster"], home, tmp_path / "qcluster.log")
    web = Background([str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                     home, tmp_path / "runserver.log")
    try:
        succeeded = wait_for(lambda: all(job_row(pk)[0] == "succeeded" for pk in ids),
                             timeout=60, interval=0.3)
        assert succeeded, (f"jobs {[job_row(pk) for pk in ids]} after 60 s; qcluster said:\n"
                           f"{cluster.log()[-4000:]}")
        lap("jobs succeeded")
        # The README's LOGGING: each job's start and end, by task and id; not django-q2's line.
        # (The end line follows the commit that the wait above saw: wait for it too.)
        lines = [line for pk in ids for line in (
            rf"job {pk} \({re.escape(job_row(pk)[1])}\) attempt 1 of \d+ started",
            rf"job {pk} \({re.escape(job_row(pk)[1])}\) attempt 1 ended: succeeded in ")]
        logged = wait_for(lambda: all(re.search(line, cluster.log()) for line in lines),
                          timeout=10, interval=0.2)
        assert logged, (lines, cluster.log()[-4000:])
        assert "Processed '" not in cluster.log(), cluster.log()[-4000:]

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

    # What the README runs once the job has run, and what it says that prints.
    for n, line in afterwards:
        out = run(python, *shlex.split(line.replace("<id>", ids[n]))[1:], cwd=home)
        promised = re.search(r"prints\s+`([^`]+)`", sections[n])
        assert promised, f"the README does not say what {line!r} prints"
        # The last line: Django 6's shell first says what it imported automatically.
        assert out.strip().splitlines()[-1] == " ".join(promised.group(1).split()), (line, out)

    task_name = job_row(job_id)[1]
    script = (PAGES.replace("JOB_ID", job_id).replace("TASK_NAME", task_name)
              .replace("USERNAME", SUPERUSER["DJANGO_SUPERUSER_USERNAME"])
              .replace("DASHBOARD/", "/" + prefixes["dashboard.urls"])
              .replace("JOBS/", "/" + prefixes["jobs.urls"]))
    pages = run(python, "manage.py", "shell", "-c", script, cwd=home)
    assert "ALL PAGES OK" in pages, pages

    expected = app_files()
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
    ("/admin/jobs/job/", ["TASK_NAME", "Succeeded", 'href="DASHBOARD/jobs/"']),  # its link
    ("/admin/jobs/job/JOB_ID/change/", ["TASK_NAME", "Succeeded"]),
    ("DASHBOARD/", ["Succeeded"]),
    ("DASHBOARD/jobs/", ["TASK_NAME", "Succeeded"]),
    ("DASHBOARD/jobs/JOB_ID/", ["TASK_NAME", "Succeeded"]),
    ("JOBS/api/jobs/JOB_ID/status/", ['"status": "succeeded"']),
]:
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200, (url, response.status_code, body[:2000])
    for text in must_show:
        assert text in body, (url, text, body[:3000])
    print("OK", url)
# The jobs app's own health check (no dashboard needed): it answers, 503 here with no
# cluster left running, saying why.
response = client.get("JOBS/healthz")
assert response.status_code in (200, 503) and response.json()["database"] == "ok", (
    response.status_code, response.content[:2000])
print("OK JOBS/healthz")
print("ALL PAGES OK")
"""
