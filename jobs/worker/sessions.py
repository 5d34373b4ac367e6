"""The worker processes' database sessions: named after their worker, bounded on the
wire, and ended by the reaper once their worker's lease lapsed.

A worker cut off from the database inside its task's transaction keeps that
transaction, and every lock it took (a `once()` key, the rows it wrote), open on
the server until its session ends. Nothing on the wire need end it: a proxy or a
NAT that goes silent still acknowledges at the TCP level, and a task computing
inside its transaction looks idle in transaction to the server too. The lease
is what bounds it: the reaper that settles a lapsed attempt (in any cluster)
ends the transactions that worker began before its lease ran out
(`end_lapsed_transactions`). It finds them by name: each worker process names
its sessions after its id (the one its attempts record), at connect time, so no
statement per job is spent on it. The worker's heartbeat connection has a name
of its own and is never ended; neither is a transaction begun after the lapse.

The rest are backstops, for when no other cluster's reaper can act:
- client side (libpq): TCP keepalives, `tcp_user_timeout` and `connect_timeout`
  derived from the lease, unless the project set them, so a worker notices a
  partition that drops packets within about a lease;
- server side, set once per direct connection where no one else set a value:
  the same keepalives and user timeout, so the server ends a vanished
  worker's session by itself, and `idle_in_transaction_session_timeout` at
  the longest task timeout plus the grace after which django-q2 kills a
  worker anyway: never shorter than a live task's transaction. Behind a
  pooler the server session is the pooler's, and PgBouncer's own
  `idle_transaction_timeout` and keepalives bound it;
- `Watchdog`: the heartbeat's statements get a deadline; past it the
  connection is cut, so a renewal sent into silence fails instead of waiting.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import Error as DatabaseError

from jobs import conf, database, dialect
from jobs.conf import TIMEOUT_GRACE_SECONDS
from jobs.core.registry import longest_timeout

logger = logging.getLogger("jobs.sessions")

WORKER, HEARTBEAT = "jobs-worker:", "jobs-heartbeat:"
MAX_NAME_BYTES = 63  # PostgreSQL keeps no more of an application_name
_OURS = re.compile(r" ?jobs-(?:worker|heartbeat):[0-9a-f]{32}$")
INSUFFICIENT_PRIVILEGE = "42501"


class _State:
    configured = False  # this process is a worker whose sessions are named and bounded
    told: set[str] = set()


_state = _State()


def session_name(role: str, worker_id: UUID, given: str = "") -> str:
    """`<given> jobs-worker:<id hex>`: the project's own application_name kept in front
    (printable ASCII only, shortened to fit), the worker's id always whole at the end,
    where the reaper looks for it."""
    suffix = f"{role}{worker_id.hex}"
    given = "".join(c for c in _OURS.sub("", given) if " " <= c <= "~").strip()
    room = MAX_NAME_BYTES - len(suffix) - 1
    return f"{given[:room]} {suffix}" if given and room > 0 else suffix


def client_limits(lease_seconds: float) -> dict[str, int]:
    """libpq's TCP limits for a worker's connections, from the lease: an idle connection
    whose peer vanished is noticed after idle + interval x count (19 s at the default
    30 s lease), data the peer never acknowledges after a lease, a connection that
    does not open after a third of one (libpq counts whole seconds, 2 at least)."""
    idle = max(1, int(lease_seconds / 3))
    return {"keepalives": 1, "keepalives_idle": idle,
            "keepalives_interval": max(1, int(lease_seconds / 10)), "keepalives_count": 3,
            "tcp_user_timeout": max(1000, int(lease_seconds * 1000)),
            "connect_timeout": max(2, math.ceil(lease_seconds / 3))}


def configure_worker(worker_id: UUID, lease_seconds: float) -> None:
    """In a worker process, at spawn and before its first connection: name its sessions
    after `worker_id` and bound them (the project's own values win). PostgreSQL only."""
    wrapper = database.current()
    if not dialect.of(wrapper).manages_sessions:
        return
    options = wrapper.settings_dict.setdefault("OPTIONS", {})
    given = options.get("application_name") or os.environ.get("PGAPPNAME", "")
    options["application_name"] = session_name(WORKER, worker_id, given)
    for key, value in client_limits(lease_seconds).items():
        if key == "connect_timeout" and "PGCONNECT_TIMEOUT" in os.environ:
            continue
        options.setdefault(key, value)
    _state.configured = True


def name_heartbeat_connection() -> None:
    """Give this thread's connection (the heartbeat's) its own name, so the reaper never
    mistakes its autocommit statements for the lapsed task's transaction."""
    wrapper = database.current()
    options = wrapper.settings_dict.get("OPTIONS", {})
    name = options.get("application_name", "")
    if WORKER not in name:
        return
    renamed = {**options, "application_name": name.replace(WORKER, HEARTBEAT)}
    wrapper.settings_dict = {**wrapper.settings_dict, "OPTIONS": renamed}


def server_limits(lease_seconds: float) -> dict[str, str]:
    """The server-side limits of a worker's session: the client's keepalives and user
    timeout, for the server's end of the connection, and an idle-in-transaction limit
    no live task reaches (its own timeout stops it first, and django-q2 kills the
    worker TIMEOUT_GRACE_SECONDS later)."""
    client = client_limits(lease_seconds)
    return {"tcp_keepalives_idle": str(client["keepalives_idle"]),
            "tcp_keepalives_interval": str(client["keepalives_interval"]),
            "tcp_keepalives_count": str(client["keepalives_count"]),
            "tcp_user_timeout": str(client["tcp_user_timeout"]),
            "idle_in_transaction_session_timeout":
                str((longest_timeout() + TIMEOUT_GRACE_SECONDS) * 1000)}


def on_connection_created(sender: Any, connection: Any, **_: Any) -> None:
    """Django's connection_created, in a configured worker: the server-side limits."""
    if not _state.configured or connection.alias != database.alias():
        return
    d = dialect.of(connection)
    if not d.manages_sessions:
        return
    values = server_limits(conf.get().lease_seconds)
    try:
        # One statement per new connection of a worker, never per job (jobs.dialect).
        with connection.cursor() as cursor:
            cursor.execute(d.server_limits_sql, d.server_limits_params(
                values, connection.connection.info.backend_pid))
    except DatabaseError as exc:  # a backstop: the next statement meets the real trouble
        logger.warning("could not set the worker session's server-side limits: %s", exc)


def end_lapsed_transactions(worker_id: UUID | None, lease_end: datetime) -> int:
    """End (pg_terminate_backend) the transactions of worker `worker_id` that began
    before `lease_end`, its lapsed lease's end; how many were ended.

    Call only once the attempt is settled as lost: the transaction then holds
    nothing that may still commit, and its locks (`once()` keys, rows) are what
    keeps the job's re-run waiting. A transaction begun after the lapse belongs to
    later work of that worker and is left alone, as is its heartbeat's session.
    Needs the same role as the workers, or membership in pg_signal_backend and
    pg_read_all_stats; without them this says so once and ends nothing.
    """
    d = dialect.current()
    if worker_id is None or not d.manages_sessions:
        return 0
    name = f"{WORKER}{worker_id.hex}"
    try:
        with database.atomic(), database.connection.cursor() as cursor:
            cursor.execute(d.lapsed_transactions_sql,
                           {"end": lease_end, "n": len(name), "name": name})
            rows = cursor.fetchall()
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        _tell_once("signal", "the reaper may not end a lapsed worker's transaction (%s): "
                   "its locks stay until its session ends. Run every cluster as the same "
                   "database role, or GRANT pg_signal_backend TO the reaper's role", exc)
        return 0
    if any(hidden for hidden, _ in rows):
        _tell_once("read", "the reaper cannot see the sessions of a lapsed worker that "
                   "runs as another database role, so it cannot end them: run every "
                   "cluster as the same role, or GRANT pg_read_all_stats, "
                   "pg_signal_backend TO the reaper's role")
    return sum(1 for _, ended in rows if ended)


def _tell_once(key: str, message: str, *args: Any) -> None:
    if key not in _state.told:
        _state.told.add(key)
        logger.warning(message, *args)


class Deadline:
    """One armed deadline; `cut` says whether it fired."""

    def __init__(self, at: float, fd: int | None) -> None:
        self.at, self.fd, self.cut = at, fd, False


class Watchdog(threading.Thread):
    """Cuts a connection whose statement outlived its deadline.

    A statement sent into a silent network waits for ever: psycopg has no timeout of
    its own, and the server's `statement_timeout` never hears of it. Shutting the
    socket down (on a duplicate of its descriptor, from this thread) wakes the
    waiting call, which then fails as a lost connection does.
    """

    def __init__(self) -> None:
        super().__init__(name="jobs-watchdog", daemon=True)
        self._cond = threading.Condition()
        self._armed: Deadline | None = None
        self._stopping = False

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    @contextmanager
    def deadline(self, seconds: float, fd: int | None) -> Iterator[Deadline]:
        """Cut the connection on `fd` if the block has not ended within `seconds`."""
        armed = Deadline(time.monotonic() + seconds, fd)
        if fd is None:
            yield armed
            return
        with self._cond:
            self._armed = armed
            self._cond.notify()
        try:
            yield armed
        finally:
            with self._cond:  # a cut and a disarm never cross: both hold the lock
                self._armed = None

    def run(self) -> None:
        with self._cond:
            while not self._stopping:
                if self._armed is None:
                    self._cond.wait()
                    continue
                armed = self._armed
                left = armed.at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                _cut(armed.fd)
                armed.cut, self._armed = True, None


def _cut(fd: int) -> None:
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed: nothing left to wake
        pass


def socket_of(wrapper: Any) -> int | None:
    """The open connection's socket descriptor (psycopg 3 or 2), else None (SQLite)."""
    raw = getattr(wrapper, "connection", None)
    try:
        return raw.fileno() if raw is not None and dialect.of(wrapper).manages_sessions \
            else None
    except Exception:  # noqa: BLE001 - the driver raises when the connection is closed
        return None
