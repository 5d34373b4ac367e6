"""Is the job system healthy? What /healthz answers, for load balancers and monitors.

Healthy means: the database answers, at least one cluster refreshed its registry
row within JOBS['HEALTH_CLUSTER_SECONDS'], no due job has waited longer than
JOBS['HEALTH_MAX_WAIT_SECONDS'], and no queue with due jobs lacks a live cluster
serving it (jobs.ops.serving: those jobs would wait forever, so this is said at
once, not after the wait limit); `unserved_queues` names them. Unresolved dead
letters are reported, not judged: they need an operator, not a restart; so are
paused queues, whose jobs wait on an operator's decision and do not count against
the wait (nor as unserved).

The figures are jobs.core.figures', the same as /metrics' and the pages': due and
waits by the database's clock, paused queues included. So `oldest_due_wait_seconds`
is every queue's oldest wait, as /metrics and the overview give it, and the judged
one, paused queues left out, is `oldest_unpaused_wait_seconds` beside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import Error as DatabaseError
from django.utils import timezone

from jobs import conf
from jobs.core import figures, queues
from jobs.database import connection
from jobs.models import Cluster, DeadLetter
from jobs.ops import serving


def check(now: datetime | None = None) -> dict[str, Any]:
    """The health report; `healthy` is False with every `problems` entry saying why."""
    given, now = now, now or timezone.now()
    settings = conf.get()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen = Cluster.objects.filter(
            stopped_at__isnull=True,
            last_seen_at__gte=now - timedelta(seconds=settings.health_cluster_seconds),
        ).count()
        paused = queues.paused()
        waiting = figures.waiting_by_queue(given)  # due by the database's clock
        dead = DeadLetter.objects.filter(resolved_at__isnull=True).count()
        unserved = serving.state(given, waiting, paused).unserved
    except DatabaseError as exc:
        return {"healthy": False, "database": "unreachable",
                "problems": [f"the database does not answer ({type(exc).__name__})"]}
    oldest = figures.oldest_wait(waiting)
    judged = figures.oldest_wait(waiting, leave_out=paused)
    wait = judged.total_seconds() if judged else 0.0
    problems = []
    if not seen:
        problems.append(f"no cluster seen in the last {settings.health_cluster_seconds:g} s")
    if wait > settings.health_max_wait_seconds:
        problems.append(f"the oldest due job has waited {wait:.0f} s "
                        f"(limit {settings.health_max_wait_seconds:g} s)")
    for q in unserved:
        problems.append(f"queue {q.name!r} has {q.due} due job(s) and no live cluster serves it "
                        f"(start one with: {q.command})")
    return {
        "healthy": not problems,
        "database": "ok",
        "clusters_seen": seen,
        "oldest_due_wait_seconds": round(oldest.total_seconds(), 3) if oldest else 0.0,
        "oldest_unpaused_wait_seconds": round(wait, 3),
        "unresolved_dead_letters": dead,
        "paused_queues": len(paused),
        "unserved_queues": [q.name for q in unserved],
        "problems": problems,
    }
