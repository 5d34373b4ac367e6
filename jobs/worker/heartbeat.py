"""The heartbeat: proof, written every lease/3, that a worker still runs its job.

It runs beside the task, not inside it, so a task need not cooperate to stay
alive. On the way it notices an operator's cancel request, and the loss of
the job to the reaper (the renewal matched nothing): both are passed to the
task through its context and end it at its next safe point.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, close_old_connections, connection

from jobs.core import transitions
from jobs.core.transitions import Claimed

logger = logging.getLogger("jobs.heartbeat")


class Heartbeat(threading.Thread):
    """Renews the lease from the worker process while the task runs."""

    def __init__(self, claimed: Claimed, lease_seconds: float, cancel: threading.Event,
                 lost: threading.Event):
        super().__init__(name=f"heartbeat-{claimed.job.pk}", daemon=True)
        self.claimed = claimed
        self.lease_seconds = lease_seconds
        self.cancel = cancel
        self.lost = lost
        self._stop_event = threading.Event()

    def run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        try:
            while not self._stop_event.wait(interval):
                try:
                    close_old_connections()
                    owned, cancel = transitions.renew_lease(
                        self.claimed, lease_seconds=self.lease_seconds
                    )
                except DatabaseError:
                    logger.warning("heartbeat for job %s failed; retrying",
                                   self.claimed.job.pk, exc_info=True)
                    connection.close()
                    continue
                if not owned:
                    self.lost.set()
                    return
                if cancel:
                    self.cancel.set()
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
