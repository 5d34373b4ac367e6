"""Chaos: two real clusters, kill -9 of workers and whole clusters mid-run.

The promise under test: every job ends in a truthful terminal state, no
attempt stays open, and each business effect happens exactly once per
succeeded job.
"""

import os
import random
import signal
import statistics
import time

import pytest
from django.db.models import Count

from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus
from tests.cluster import wait_for
from tests.testapp.models import Effect

# PostgreSQL only: on SQLite an atomic task holds the single write lock, so
# heartbeats queue behind it and a 2 s lease can lapse on a healthy worker.
pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
S = JobStatus

JOBS = 500
KILLS = 8
CHAOS_ENV = {
    "JOBS_LEASE_SECONDS": "2",
    "JOBS_REAPER_INTERVAL_SECONDS": "0.5",
    "JOBS_RESERVATION_SECONDS": "3",
    "JOBS_SHUTDOWN_GRACE_SECONDS": "1",
}


def running_worker_pids(cluster_pids: set[int] | None = None) -> list[int]:
    """Pids of workers that hold a running job right now (from their leases)."""
    owners = Job.objects.filter(status=S.RUNNING).values_list("lease_owner", flat=True)
    pids = [int(o.rsplit(":", 1)[1]) for o in owners if ":" in o]
    return [p for p in pids if cluster_pids is None or p in cluster_pids]


def descendants(pid: int) -> set[int]:
    from jobs.management.commands.qcluster import _descendants

    return set(_descendants(pid))


def test_kill_9_workers_and_clusters_loses_nothing_and_duplicates_nothing(
    cluster_factory, on_postgres, capsys
):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "20261123")))
    for i in range(JOBS):
        enqueue("tests.slow_effect", f"chaos:{i}", round(rng.uniform(0.05, 0.35), 3))
    clusters = [cluster_factory(env=CHAOS_ENV), cluster_factory(env=CHAOS_ENV)]
    started = time.monotonic()
    killed_at: dict[int, float] = {}  # worker pid -> wall-clock time of its kill -9
    kills = 0
    time.sleep(2)
    while kills < KILLS and Job.objects.exclude(status__in=S.terminal()).exists():
        i = rng.randrange(len(clusters))
        victims = running_worker_pids(descendants(clusters[i].pid))
        if not victims:
            time.sleep(0.2)
            continue
        now = time.time()
        if kills % 3 == 2:  # every third kill takes the whole cluster down
            for pid in victims:
                killed_at[pid] = now
            clusters[i].kill()
            clusters[i] = cluster_factory(env=CHAOS_ENV)
        else:
            pid = rng.choice(victims)
            killed_at[pid] = now
            os.kill(pid, signal.SIGKILL)
        kills += 1
        time.sleep(rng.uniform(1.0, 2.0))

    done = wait_for(lambda: not Job.objects.exclude(status__in=S.terminal()).exists(),
                    timeout=120, interval=0.5)
    elapsed = time.monotonic() - started
    for c in clusters:
        c.stop()
    assert done, "jobs still not terminal: " + str(
        list(Job.objects.values("status").annotate(n=Count("id")))
    )

    succeeded = Job.objects.filter(status=S.SUCCEEDED).count()
    assert Job.objects.count() == JOBS
    assert not Job.objects.filter(status=S.RUNNING).exists()
    assert not Attempt.objects.filter(status=AttemptStatus.RUNNING).exists()
    # Exactly one effect per succeeded job: none lost, none doubled.
    assert Effect.objects.count() == succeeded
    assert Effect.objects.filter(job_id__in=Job.objects.filter(status=S.SUCCEEDED)
                                 .values("id")).count() == succeeded
    assert succeeded == JOBS  # 25 attempts each: no job should run out under 8 kills

    lost = list(Attempt.objects.filter(status=AttemptStatus.LOST))
    assert kills == KILLS and lost, "the kills must have hit running jobs"
    assert all(a.worker_pid in killed_at for a in lost)
    assert all(a.error_message.startswith("worker ") for a in lost)
    recovery = sorted(
        a.finished_at.timestamp() - killed_at[a.worker_pid] for a in lost
    )
    with capsys.disabled():  # the figures belong in CI's output, pass or fail
        print(
        f"\nchaos: jobs={JOBS} kills={kills} lost_attempts_recovered={len(lost)} "
        f"kill_to_requeue_p50={statistics.median(recovery):.2f}s "
        f"max={max(recovery):.2f}s total={elapsed:.1f}s"
        )
    assert max(recovery) < 10  # lease 2 s + reaper interval 0.5 s, with slack
