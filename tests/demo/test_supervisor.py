"""The demo's cluster supervisor (demo.supervisor) with real child processes: a child
that dies is reported with how it ended, reaped (no zombie), its group cleared and
the child restarted; repeated quick deaths make it give up loudly; stop is prompt."""

import os
import signal
import sys
import threading
import time

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo import supervisor
from demo.supervisor import Supervisor, how_it_ended
from tests import strategies as hs
from tests.cluster import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


class Said(list):
    """The lines the supervisor printed, safe to read while its thread writes."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.append(line)

    def text(self) -> str:
        with self.lock:
            return "\n".join(self)


def gone(pid: int) -> bool:
    """No process, or nothing left of it but a zombie of someone else's (never ours)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE and not is_our_child(pid)
    except psutil.NoSuchProcess:
        return True


def is_our_child(pid: int) -> bool:
    try:
        return psutil.Process(pid).ppid() == os.getpid()
    except psutil.NoSuchProcess:
        return False


def reaped(pid: int) -> bool:
    """Our child `pid` was waited for: the kernel keeps no exit status of it."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture
def watched():
    started: list[Supervisor] = []

    def start(command=SLEEPER, **kwargs) -> tuple[Supervisor, Said]:
        said = Said()
        s = Supervisor(command, say=said, **kwargs)
        s.start()
        started.append(s)
        return s, said

    yield start
    for s in started:
        s.stop()


@pytest.mark.slow  # real child processes, killed and restarted
def test_a_killed_child_is_reported_reaped_and_restarted(watched):
    s, said = watched(backoff=0.1)
    first = s.proc.pid
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: s.starts == 2 and s.proc.pid != first, timeout=10), said.text()
    assert "was killed by signal 9 (SIGKILL)" in said.text()
    assert f"(pid {first})" in said.text() and "Jobs are not running" in said.text()
    assert "Restarting the cluster in 0.1 s" in said.text()
    assert f"running again (pid {s.proc.pid})" in said.text()
    assert reaped(first) and gone(first)  # no zombie left behind
    assert s.proc.poll() is None and not s.gave_up.is_set()


@pytest.mark.slow  # real child processes, killed and restarted
def test_what_the_dead_child_left_in_its_group_is_killed(watched, tmp_path):
    """A kill -9 of qcluster's main process leaves its sentinel and workers behind."""
    pidfile = tmp_path / "grandchild"
    parent = [sys.executable, "-c",
              "import subprocess, sys, time; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
              f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(120)"]
    s, said = watched(parent, backoff=5)
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text(), timeout=10)
    grandchild = int(pidfile.read_text())
    assert not gone(grandchild)
    os.kill(s.proc.pid, signal.SIGKILL)
    assert wait_for(lambda: "Restarting" in said.text(), timeout=10), said.text()
    assert wait_for(lambda: gone(grandchild), timeout=10)


@pytest.mark.slow  # real child processes, killed and restarted
def test_repeated_quick_deaths_give_up_loudly(watched):
    s, said = watched([sys.executable, "-c", "import sys; sys.exit(3)"], backoff=0.01,
                      max_quick_deaths=3, quick_seconds=30)
    assert s.gave_up.wait(timeout=20), said.text()
    assert said.text().count("exited with code 3") == 3 and s.starts == 3
    assert "died 3 times, each within 30 s of starting: not restarting it" in said.text()
    assert reaped(s.proc.pid)


@pytest.mark.slow  # real child processes, killed and restarted
def test_a_death_after_a_long_run_starts_the_count_again(watched):
    s, said = watched(backoff=0.05, max_quick_deaths=2, quick_seconds=0.5)
    for _ in range(3):  # each lived past quick_seconds: never two quick deaths in a row
        pid = s.proc.pid
        assert wait_for(lambda: time.monotonic() - s.started_at > 0.6, timeout=5)
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda p=pid: s.proc.pid != p, timeout=10), said.text()
    assert not s.gave_up.is_set() and s.starts == 4


@pytest.mark.slow  # real child processes, killed and restarted
def test_stop_ends_the_child_promptly_and_reaps_it(watched):
    s, said = watched()
    pid = s.proc.pid
    began = time.monotonic()
    s.stop()
    assert time.monotonic() - began < 2.0
    assert s.proc.returncode == -signal.SIGTERM and reaped(pid) and gone(pid)
    assert "Restarting" not in said.text() and "!!!" not in said.text()


@pytest.mark.slow  # real child processes, killed and restarted
def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(watched, tmp_path):
    ready = tmp_path / "ready"
    s, _ = watched([sys.executable, "-c", "import signal, time; "
                    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    f"open({str(ready)!r}, 'w').close(); time.sleep(120)"],
                   stop_timeout=0.5)
    assert wait_for(ready.exists, timeout=10)
    s.stop()
    assert s.proc.returncode == -signal.SIGKILL and reaped(s.proc.pid)


@pytest.mark.parametrize(("code", "words"), [
    (0, "exited with code 0"), (3, "exited with code 3"),
    (-9, "was killed by signal 9 (SIGKILL)"), (-15, "was killed by signal 15 (SIGTERM)"),
    (-200, "was killed by signal 200 (unknown signal)")])
def test_how_a_child_ended_in_words(code, words):
    assert how_it_ended(code) == words


# --- Its arguments: a bad value is refused naming the rule, and nothing is started --------


@pytest.mark.property
@given(name=st.sampled_from(["backoff", "max_quick_deaths", "quick_seconds", "stop_timeout"]),
       value=hs.scalars)
def test_bad_arguments_are_refused_naming_the_rule(name, value, monkeypatch):
    spawned = []
    monkeypatch.setattr(supervisor.subprocess, "Popen", lambda *a, **k: spawned.append(a))
    most = {"backoff": 30, "max_quick_deaths": 1000}.get(name, 3600)
    valid = (isinstance(value, (int, float)) and not isinstance(value, bool)
             and 0 < value <= most  # False for a NaN
             and (name != "max_quick_deaths" or float(value).is_integer()))
    try:
        s = Supervisor(SLEEPER, say=print, **{name: value})
    except ValueError as exc:
        assert not valid
        assert str(exc).startswith(f"{name} must be a ")
        assert f"greater than 0 and at most {most}, got " in str(exc)
    else:
        assert valid and s.proc is None
    assert spawned == []
