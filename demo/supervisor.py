"""The demo's cluster, kept running: `make run` starts it beside runserver.

A cluster that dies under the demo used to leave nothing but a zombie: the
terminal said nothing, nothing restarted it, and queued jobs waited forever. A
watcher thread now polls the child (reaping it, so no zombie is left), says
loudly how it ended (exit code or signal), kills what is left of its process
group (a sentinel or worker orphaned by a `kill -9` of the main process; the
reaper settles any job they held), and starts it again after a short backoff.
After `max_quick_deaths` deaths in a row, each within `quick_seconds` of its
start, it gives up, loudly: a cluster that cannot start (a bad setting, the
database away) would otherwise restart forever and bury the reason in noise.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from jobs.core.queues import shown

POLL_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 30.0


def how_it_ended(returncode: int) -> str:
    """A child's end in words: 'exited with code 1', 'was killed by signal 9 (SIGKILL)'."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with code {returncode}"


def _check(name: str, value: object, *, most: float, whole: bool = False) -> None:
    """ValueError naming the argument and its rule, unless `value` is a number in
    (0, most] (whole if asked): a NaN, an infinity or a bool would loop or never wait."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        try:
            number = float(value)  # an int too large for a float is out of range anyway
        except OverflowError:
            number = math.inf
        ok = math.isfinite(number) and 0 < number <= most and (not whole or number.is_integer())
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind} greater than 0 and at most {most:g}, "
                         f"got {shown(value)}")


class Supervisor:
    """Runs `command` as a child in its own session, restarting it when it dies.

    `say` receives each line meant for the terminal. `stop()` ends the child (SIGTERM,
    then the whole group killed after `stop_timeout`) and the watcher.
    """

    def __init__(self, command: Sequence[str], *, say: Callable[[str], None],
                 env: dict[str, str] | None = None, name: str = "cluster",
                 backoff: float = 1.0, max_quick_deaths: int = 5,
                 quick_seconds: float = 10.0, stop_timeout: float = 40.0) -> None:
        _check("backoff", backoff, most=MAX_BACKOFF_SECONDS)
        _check("max_quick_deaths", max_quick_deaths, most=1000, whole=True)
        _check("quick_seconds", quick_seconds, most=3600)
        _check("stop_timeout", stop_timeout, most=3600)
        self.command, self.say, self.env, self.name = list(command), say, env, name
        self.backoff, self.max_quick_deaths = float(backoff), int(max_quick_deaths)
        self.quick_seconds, self.stop_timeout = float(quick_seconds), float(stop_timeout)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.gave_up = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name=f"{self.name}-watcher",
                                         daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self.proc = subprocess.Popen(self.command, env=self.env, start_new_session=True)
            self.started_at = time.monotonic()
            self.starts += 1

    def _watch(self) -> None:
        quick_deaths = 0
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None or proc.poll() is None:  # poll() reaps a dead child
                self._stopping.wait(POLL_SECONDS)
                continue
            if self._stopping.is_set():
                return  # stopped by us
            lived = time.monotonic() - self.started_at
            _kill_group(proc.pid)  # what the dead main process left behind
            quick_deaths = quick_deaths + 1 if lived < self.quick_seconds else 0
            self.say(f"!!! The {self.name} (pid {proc.pid}) {how_it_ended(proc.returncode)} "
                     f"after {lived:.1f} s. Jobs are not running.")
            if quick_deaths >= self.max_quick_deaths:
                self.say(f"!!! The {self.name} died {quick_deaths} times, each within "
                         f"{self.quick_seconds:g} s of starting: not restarting it. Read its "
                         "output above, fix the cause, and start the demo again.")
                self.gave_up.set()
                return
            delay = min(self.backoff * 2 ** max(quick_deaths - 1, 0), MAX_BACKOFF_SECONDS)
            self.say(f"!!! Restarting the {self.name} in {delay:g} s.")
            if self._stopping.wait(delay):
                return
            self._spawn()
            if self.proc is not None and self.proc is not proc:
                self.say(f"The {self.name} is running again (pid {self.proc.pid}).")

    def stop(self) -> None:
        """Stop watching, then the child: SIGTERM (a graceful drain), its group killed
        if it is still there after `stop_timeout`; reaped either way."""
        with self._lock:
            self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
        _kill_group(proc.pid)


def _kill_group(pgid: int) -> None:
    """Kill whatever is left of a process group (its leader already gone)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
