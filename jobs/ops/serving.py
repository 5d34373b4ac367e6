"""Which queues have due jobs that no live cluster serves: the one place that says so.

A job put in a queue no cluster serves (`@task(queue_name="reports")` while the
only cluster runs `qcluster` on the default queue) is not late, it is never
going to run, and nothing else would say so. A queue is *unserved* when it has
due jobs (queued or retrying, `run_after` passed by the database's clock, as
the broker decides) and no live cluster (`jobs.core.clusters.alive`: the
registry's one liveness rule) lists it among the queues it serves.

A paused queue is never reported as unserved: its jobs wait on an operator's
decision, and it is shown as paused wherever queues are listed (the queues
page, /healthz's `paused_queues`). Resuming it makes it unserved again if no
cluster serves it.

The dashboard's overview and queues page, /healthz, /metrics and every
running cluster's log (`UnservedWatch`, once per episode) all read it here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import Error as DatabaseError

from jobs.core import clusters, figures, queues
from jobs.database import connection

logger = logging.getLogger("jobs.serving")


@dataclass(frozen=True)
class UnservedQueue:
    name: str
    due: int  # jobs due now in it
    oldest_wait: timedelta  # how long its oldest due job has waited

    @property
    def command(self) -> str:
        """How to serve it: the qcluster flag (or JOBS['QUEUES'] for every cluster)."""
        return f"python manage.py qcluster --queues {self.name}"


@dataclass(frozen=True)
class Serving:
    """What the overview needs at once: how many clusters live, and what nobody serves."""

    clusters_alive: int
    unserved: list[UnservedQueue]


def state(now: datetime | None = None,
          waiting: dict[str, dict[str, Any]] | None = None,
          paused: set[str] | None = None) -> Serving:
    """The live clusters and the unserved queues.

    Two queries in the common case: the due jobs per queue (`figures.waiting_by_queue`,
    an index scan of due jobs; skipped when the caller passes `waiting`, read at
    `now`) and the live clusters' rows; the pauses are read only when some queue with
    due jobs has no live cluster. `now` stands for both clocks in tests; without it,
    due and wait are judged by the database's clock and liveness by this host's, each
    as the engine judges it. A caller that has read the pauses already passes them.
    """
    if waiting is None:
        waiting = figures.waiting_by_queue(now)
    alive = list(clusters.alive(now).values_list("queues", flat=True))
    served = {name for listed in alive for name in (listed or [])}
    candidates = {name: r for name, r in waiting.items() if r["due"] and name not in served}
    if candidates:
        for name in (queues.paused() if paused is None else paused) & set(candidates):
            del candidates[name]
    unserved = [UnservedQueue(name, r["due"], r["wait"])
                for name, r in sorted(candidates.items())]
    return Serving(clusters_alive=len(alive), unserved=unserved)


def unserved(now: datetime | None = None) -> list[UnservedQueue]:
    """The queues with due jobs that no live cluster serves (paused ones left out)."""
    return state(now).unserved


class UnservedWatch:
    """Logs a WARNING when a queue becomes unserved, once per episode.

    Each running cluster keeps one and calls `check()` from its registry refresh
    (qcluster's main loop), so every cluster's log says it once; a queue that is
    served again (or has no due job left) is logged at INFO and forgotten, so a
    later episode is reported again. Never raises: the database being away is
    said elsewhere (the registry refresh, the maintenance thread).
    """

    def __init__(self) -> None:
        self.reported: set[str] = set()

    def check(self, now: datetime | None = None) -> list[UnservedQueue]:
        """The newly unserved queues (each logged once); [] when the database fails."""
        try:
            found = unserved(now)
        except DatabaseError as exc:
            logger.debug("could not look for unserved queues (%s)", exc)
            connection.close()
            return []
        names = {q.name for q in found}
        for name in sorted(self.reported - names):
            logger.info("queue %r is served again, or has no due job left", name)
        new = [q for q in found if q.name not in self.reported]
        for q in new:
            logger.warning(
                "queue %r has %d due job(s), the oldest waiting %.0f s, and no live cluster "
                "serves it: they will wait until one does. Start one with `%s`, or list it "
                "in JOBS['QUEUES']", q.name, q.due, q.oldest_wait.total_seconds(), q.command)
        self.reported = names
        return new
