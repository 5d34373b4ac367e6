"""A realistic system state for the README screenshots, built from the demo tasks.

Jobs that ran did so in-process through jobs.worker.runner.run_job (so their steps,
attempts and dead letters are exactly what a worker writes); only the hour of
throughput history behind the chart is bulk-written, as finished rows.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.core.causes import cause
from jobs.models import (
    Attempt,
    AttemptStatus,
    Cluster,
    DeadLetter,
    Job,
    JobStatus,
    Step,
    StepStatus,
)
from jobs.scheduling.builtins import install_builtins
from jobs.scheduling.firing import create_schedule
from jobs.worker.runner import run_job


def build(owner) -> Job:
    """Populate the database; return the catalog import that died at "transform"."""
    dead_import = enqueue("demo.import_catalog", "partner-feed.csv", max_rows=500,
                          enqueued_by=owner, idempotency_key="catalog:partner-feed:2025-06")
    run_job(dead_import.pk)
    run_job(enqueue("demo.charge_card", 1042).pk)
    run_job(enqueue("demo.flaky_fetch", "https://api.example.com/rates", fail_times=2).pk)
    for i in range(3):
        run_job(enqueue("demo.add", i, i).pk)

    # Waiting work in two queues, some of it for a while.
    now = timezone.now()
    for i in range(4):
        job = enqueue("demo.build_report", 100 + i, queue="reports")
        Job.objects.filter(pk=job.pk).update(created_at=now - timedelta(minutes=7 - i),
                                             run_after=now - timedelta(minutes=7 - i))
    for i in range(2):
        enqueue("demo.build_report", 200 + i, queue="default")

    # A live cluster serving both queues (its registry row, as a running cluster keeps
    # it fresh), so the overview shows the everyday state, not the no-cluster banner.
    Cluster.objects.create(name="default", host="worker-2", pid=4700,
                           queues=["default", "reports"], workers=2, pids=[4700, 4711],
                           worker_pids=[4711], jobs_in_hand=1, last_seen_at=now)

    # A catalog import in the middle of its "validate" step.
    running = enqueue("demo.import_catalog", "catalog-eu.csv", enqueued_by=owner)
    transitions.claim(running.pk, worker_host="worker-2", worker_pid=4711, lease_seconds=600)
    Step.objects.filter(job=running, name="download").update(
        status=StepStatus.SUCCEEDED, result={"rows": 1200}, attempts=1,
        started_at=now - timedelta(seconds=40), finished_at=now - timedelta(seconds=31))
    Step.objects.filter(job=running, name="validate").update(
        status=StepStatus.RUNNING, attempts=1, started_at=now - timedelta(seconds=30),
        progress_current=700, progress_total=1200, progress_message="row 700")

    _history(now)
    install_builtins()
    create_schedule("nightly-catalog", "demo.import_catalog", "0 2 * * *", "Europe/Berlin",
                    args=["catalog-eu.csv"])
    create_schedule("hourly-report", "demo.build_report", "15 * * * *", "America/New_York",
                    args=[1])
    return dead_import


def _history(now) -> None:
    """An hour of finished jobs with a failure spike 20 minutes ago."""
    rows = []
    for minute in range(60):
        at = now - timedelta(minutes=59 - minute)
        ok = 6 + (minute * 7) % 5
        failed = (9, 14, 11, 6)[minute - 38] if 38 <= minute <= 41 else (1 if minute % 17 == 0
                                                                          else 0)
        for n in range(ok + failed):
            rows.append(Job(
                task_name="demo.build_report" if n % 3 else "demo.flaky_fetch",
                status=JobStatus.SUCCEEDED if n < ok else JobStatus.DEAD,
                created_at=at - timedelta(seconds=20), started_at=at - timedelta(seconds=5),
                finished_at=at, attempt_count=1,
                last_error="" if n < ok else "ConnectionError: upstream timed out",
                # What a worker's dead transition writes beside the error.
                failure_cause="" if n < ok else cause("ConnectionError", "upstream timed out"),
                last_failed_at=None if n < ok else at,
            ))
    Job.objects.bulk_create(rows)
    # Operators already dealt with that outage: its dead letters are resolved.
    dead = [j for j in rows if j.status == JobStatus.DEAD]
    final = Attempt.objects.bulk_create([
        Attempt(job=j, number=1, status=AttemptStatus.FAILED, started_at=j.started_at,
                finished_at=j.finished_at, error_class="ConnectionError",
                error_message="upstream timed out")
        for j in dead
    ])
    DeadLetter.objects.bulk_create([
        DeadLetter(job=j, attempt=a, attempts=1, failed_at=j.finished_at, resolved_at=now,
                   note="upstream outage")
        for j, a in zip(dead, final, strict=True)
    ])
