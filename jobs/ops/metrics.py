"""Prometheus metrics (`prometheus-client`, the `metrics` extra), served at /metrics.

Two sources, chosen per metric (docs/operations.md lists them all):

- Events are counted where they happen, from this package's signals: jobs
  enqueued (at commit, so a rolled-back enqueue counts nothing), jobs finished
  by outcome, attempt durations and queue waits. Worker processes come and go
  (django-q2 recycles them), so counters survive them through prometheus-client's
  multiprocess mode: set PROMETHEUS_MULTIPROC_DIR to one empty directory for the
  clusters and the web process of a host, before they start.
- State is read from the database at scrape time, so it is true whichever host
  scrapes: active jobs by status and queue (exact: partial indexes keep it
  cheap), all jobs (the planner's estimate, never a scan of a big table), each
  queue's depth and its oldest due job's wait (jobs.core.figures: paused queues
  included, by the database's clock), unresolved dead letters, clusters and
  workers alive, and the queues with due jobs that no live cluster serves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobs import database, signals
from jobs.core import clusters, figures
from jobs.models import Attempt, DeadLetter, Job, JobStatus
from jobs.ops import serving

ACTIVE = (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.RUNNING)
FINAL = {JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED}
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

ENQUEUED = Counter("jobs_enqueued_total", "Jobs enqueued (counted at commit).", ["task"])
FINISHED = Counter("jobs_finished_total", "Jobs that reached a final status.",
                   ["task", "outcome"])
ATTEMPTS = Counter("jobs_attempts_total", "Attempts ended, by the status they left the job in.",
                   ["task", "outcome"])
ATTEMPT_SECONDS = Histogram("jobs_attempt_duration_seconds", "How long attempts ran.",
                            ["task"], buckets=SECONDS)
QUEUE_WAIT = Histogram("jobs_queue_wait_seconds",
                       "From when a job was due (run_after) to when a worker claimed it.",
                       ["task"], buckets=SECONDS)


def _enqueued(job: Job, **_: Any) -> None:
    task = job.task_name
    database.on_commit(lambda: ENQUEUED.labels(task).inc())


def _started(job: Job, attempt: Attempt, **_: Any) -> None:
    QUEUE_WAIT.labels(job.task_name).observe(
        max((attempt.started_at - job.run_after).total_seconds(), 0.0))


def _finished(job: Job, attempt: Attempt | None, status: str, **_: Any) -> None:
    if attempt is not None:  # None: a job cancelled before it ran, which ended no attempt
        ATTEMPTS.labels(job.task_name, status).inc()
        ATTEMPT_SECONDS.labels(job.task_name).observe(
            max((timezone.now() - attempt.started_at).total_seconds(), 0.0))
    if status in FINAL:
        FINISHED.labels(job.task_name, status).inc()


def connect() -> None:
    """Count events in this process (called once, from the app's ready())."""
    signals.job_enqueued.connect(_enqueued, dispatch_uid="jobs-metrics-enqueued")
    signals.job_started.connect(_started, dispatch_uid="jobs-metrics-started")
    signals.job_finished.connect(_finished, dispatch_uid="jobs-metrics-finished")


class DatabaseState(Collector):
    """Gauges read from the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        active = GaugeMetricFamily("jobs_active", "Queued, retrying and running jobs.",
                                   labels=["status", "queue"])
        for row in (Job.objects.filter(status__in=ACTIVE).order_by()
                    .values("status", "queue").annotate(n=Count("pk"))):
            active.add_metric([row["status"], row["queue"]], row["n"])
        yield active
        estimate = figures.row_estimate(Job)
        yield GaugeMetricFamily("jobs_estimated_rows", "All jobs, as the planner estimates.",
                                value=float(Job.objects.count() if estimate is None
                                            else estimate))  # None: SQLite, small by nature
        waiting = figures.waiting_by_queue()  # due and waits by the database's clock
        depth = GaugeMetricFamily("jobs_queue_depth",
                                  "Due jobs waiting in each queue (paused queues too).",
                                  labels=["queue"])
        wait = GaugeMetricFamily("jobs_oldest_due_wait_seconds",
                                 "How long the oldest due job of each queue has waited "
                                 "(paused queues too).", labels=["queue"])
        for name, row in sorted(waiting.items()):
            if row["due"]:
                depth.add_metric([name], row["due"])
                wait.add_metric([name], row["wait"].total_seconds())
        yield depth
        yield wait
        unresolved = DeadLetter.objects.filter(resolved_at__isnull=True).count()
        yield GaugeMetricFamily("jobs_dead_letters_unresolved",
                                "Dead letters awaiting an operator.", value=unresolved)
        alive = clusters.alive(now).aggregate(n=Count("pk"), workers=Sum("workers"))
        yield GaugeMetricFamily("jobs_clusters_alive", "Clusters that refreshed their row lately.",
                                value=alive["n"])
        yield GaugeMetricFamily("jobs_workers_alive", "Workers of the clusters alive.",
                                value=alive["workers"] or 0)
        unserved = GaugeMetricFamily(
            "jobs_queue_unserved",
            "1 for each queue with due jobs that no live cluster serves (jobs.ops.serving).",
            labels=["queue"])
        for q in serving.state(None, waiting).unserved:
            unserved.add_metric([q.name], 1)
        yield unserved


def scrape() -> bytes:
    """The exposition text: this host's counters (all its processes, in multiprocess
    mode) and the database's state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        registry.register(DatabaseState())
        return generate_latest(registry)
    registry = CollectorRegistry()
    registry.register(DatabaseState())
    return generate_latest(REGISTRY) + generate_latest(registry)
