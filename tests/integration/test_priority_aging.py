"""Aging under sustained priority pressure: a stream of high-priority jobs, faster than the
cluster can drain it, must not starve low-priority jobs enqueued at the start.

The rule (docs/architecture.md, "Priority and aging"): jobs are taken by rank in order of
`run_after - priority x JOBS['PRIORITY_AGING_SECONDS']`, so a job of priority p due at t
starts before every job of priority q that became due after t + (q - p) x aging. The
share of longest-due jobs (JOBS['OLDEST_FIRST_EVERY']) would take the low jobs first by
itself; it is set out of reach here, so what is checked is aging alone
(tests/integration/test_priority_pressure.py checks the share at the default settings).
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from jobs import enqueue
from jobs.models import Attempt, Job
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
AGING = 0.5
HIGH, LOW = 10, 0
BOUND = timedelta(seconds=(HIGH - LOW) * AGING)
STREAM_SECONDS = 30.0


def test_low_priority_jobs_start_within_the_bound_under_a_high_priority_stream(
    cluster_factory, on_postgres
):
    cluster = cluster_factory(workers=2, env={"JOBS_PRIORITY_AGING_SECONDS": str(AGING),
                                              "JOBS_OLDEST_FIRST_EVERY": "1000000"})
    low = [enqueue("tests.sleep", 0.05, priority=LOW) for _ in range(4)]
    stop = threading.Event()
    enqueued = [0]

    def stream() -> None:  # ~40 jobs/s of 0.1 s each: twice what two workers drain
        try:
            while not stop.is_set():
                enqueue("tests.sleep", 0.1, priority=HIGH)
                enqueued[0] += 1
                stop.wait(0.025)
        finally:
            connection.close()

    producer = threading.Thread(target=stream, daemon=True)
    started = time.monotonic()
    producer.start()
    try:
        assert wait_for(lambda: Attempt.objects.filter(job__in=low).count() == len(low),
                        timeout=STREAM_SECONDS), cluster.log()[-3000:]
    finally:
        stop.set()
        producer.join(timeout=10)
    assert time.monotonic() - started < STREAM_SECONDS
    backlog = Job.objects.filter(priority=HIGH, attempt_count=0).count()
    assert backlog > 50, "the stream did not outrun the cluster; no pressure was applied"

    for job in Job.objects.filter(pk__in=[j.pk for j in low]):
        first = job.attempts.order_by("number").first()
        # Every high job due after this job's deadline started after it (one worker's slack).
        later_but_first = Attempt.objects.filter(
            job__priority=HIGH, job__run_after__gt=job.run_after + BOUND,
            started_at__lt=first.started_at,
        ).count()
        assert later_but_first <= 2, (job.pk, later_but_first)
