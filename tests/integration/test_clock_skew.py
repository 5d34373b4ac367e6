"""A cluster whose host clock is a minute off changes nothing but its log lines (issue 22,
item 2).

Two real clusters share the database: `skewed` runs under Debian's faketime, its
clock a minute ahead or behind, and `normal` runs on the true clock. Each runs
its own reaper. What decides (is a job due, has a lease lapsed) is the
database's clock, so:

- a job that runs for several leases while its heartbeat renews is reaped by
  neither reaper, on either cluster, and succeeds with one attempt (the skewed
  cluster's clock ahead reaped the normal worker's job; behind, the normal
  reaper reaped the skewed worker's);
- 10 jobs due 2 s from now (by the database's clock) start neither early nor
  late on the skewed cluster (ahead: they started 2 s early, behind: a minute
  late), watched from outside and by the started_at the claim wrote.
"""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection

from jobs import enqueue
from jobs.models import Cluster, Job, JobStatus
from tests.cluster import ROOT, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
S = JobStatus
LEASE = 2
ENV = {
    "JOBS_LEASE_SECONDS": str(LEASE),
    "JOBS_REAPER_INTERVAL_SECONDS": "0.5",
    # The default fallback poll (1 s) would hide a wake-up that reads the host's clock
    # (before migration 0012 a skewed pusher found a delayed job only by that poll);
    # a short one keeps such a regression within the bound too, so the wake-up itself
    # is tested by tests/unit/worker/test_wakeup.py.
    "JOBS_LISTEN_FALLBACK_SECONDS": "0.25",
}
DUE_JOBS = 10
ON_TIME = timedelta(seconds=1)
# The skew decides when the cluster starts on due work: its first due job starts
# within ON_TIME. The other nine queue behind it on 2 free workers, one hand-over each,
# which on a loaded CI machine (the matrix legs run beside the suite) took up to 0.8 s
# in all; that is throughput, the same on any clock, so each is allowed this much more.
HAND_OVER = timedelta(seconds=0.2)


# Only the wall clock is off (`--exclude-monotonic`), as on a host whose clock drifted,
# and every read of it is faked (FAKETIME_NO_CACHE), not one in ten seconds.
# libfaketime 0.9.10 and Python 3.11 disagree on waits: with CLOCK_MONOTONIC faked, a
# timed lock wait (threading.Event().wait(0.5)) a minute ahead never returned (Python's
# deadline is the faked clock, sem_clockwait the kernel's), which hung the cluster's
# main loop; with it left alone, time.sleep (clock_nanosleep, absolute) fails with
# EINVAL. So the skewed processes sleep on an Event instead (SLEEP_SHIM, loaded as
# sitecustomize by every process of the cluster); what the test skews is untouched.
FAKETIME = ["faketime", "--exclude-monotonic", "-f"]
FAKETIME_ENV = {"FAKETIME_NO_CACHE": "1"}
SLEEP_SHIM = """
import threading
import time


def _sleep(seconds):
    if seconds > 0:
        threading.Event().wait(seconds)


time.sleep = _sleep
"""
PROBE = """
import threading, time
started = time.monotonic()
time.sleep(0.1)
threading.Event().wait(0.1)
print(time.time(), time.monotonic() - started)
"""


@pytest.fixture(scope="module")
def faketime(tmp_path_factory):
    """The environment of a skewed process: Debian's /usr/bin/faketime, installed if
    missing (scripts/ensure-package.sh), proven to move Python's clock in a child
    process and to leave its waits working."""
    if not os.path.exists("/usr/bin/faketime"):
        subprocess.run(["sh", str(ROOT / "scripts" / "ensure-package.sh"),
                        "/usr/bin/faketime", "faketime"], check=True)
    shim = tmp_path_factory.mktemp("faketime-shim")
    (shim / "sitecustomize.py").write_text(SLEEP_SHIM)
    env = {**FAKETIME_ENV, "PYTHONPATH": os.pathsep.join(
        [str(shim), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for skew in (60, -60):
        probe = subprocess.run(
            [*FAKETIME, f"{skew:+d}s", sys.executable, "-c", PROBE],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=10)
        assert probe.returncode == 0, probe
        faked, waited = map(float, probe.stdout.split())
        assert abs(faked - time.time() - skew) < 5 and 0.15 < waited < 1, probe
    return env


def database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


def start_clusters(cluster_factory, skew, faketime_env):
    skewed = cluster_factory(name="skewed", workers=3, env={**ENV, **faketime_env},
                             wrapper=[*FAKETIME, skew])
    normal = cluster_factory(name="normal", workers=1, env=ENV)
    assert wait_for(lambda: Cluster.objects.filter(stopped_at__isnull=True).count() == 2, 30), (
        skewed.log()[-3000:] + normal.log()[-3000:])
    return skewed, normal


@pytest.mark.parametrize("skew", ["+60s", "-60s"])
def test_a_cluster_with_a_skewed_clock_starts_due_jobs_on_time_and_reaps_no_live_job(
        cluster_factory, on_postgres, faketime, skew):
    skewed, normal = start_clusters(cluster_factory, skew, faketime)
    logs = lambda: skewed.log()[-4000:] + "\n---- normal ----\n" + normal.log()[-2000:]  # noqa: E731

    # Three and a half leases each, renewed by their heartbeats all along.
    long_jobs = [enqueue("tests.sleep", 3.5 * LEASE, queue=q) for q in ("skewed", "normal")]
    due_at = database_now() + timedelta(seconds=2)
    due = [enqueue("tests.noop", queue="skewed", run_after=due_at) for _ in range(DUE_JOBS)]
    ids = [j.pk for j in due]

    # Watched from outside, by the database's clock: none starts early...
    seen_at = {}
    while (now := database_now()) < due_at + timedelta(seconds=5) and len(seen_at) < DUE_JOBS:
        for pk in Job.objects.filter(pk__in=ids).exclude(status=S.QUEUED).values_list(
                "pk", flat=True):
            seen_at.setdefault(pk, now)
        assert not seen_at or min(seen_at.values()) >= due_at - timedelta(seconds=0.1), (
            f"{len(seen_at)} jobs started {(due_at - min(seen_at.values())).total_seconds():.1f}"
            f" s before they were due\n{logs()}")
        time.sleep(0.05)
    # ... and none a skew late (the bug: a minute). How late each started is judged by
    # the started_at its claim wrote, below; this outside view also carries the
    # watcher's own lag on a loaded machine, so it only bounds the order of magnitude.
    assert len(seen_at) == DUE_JOBS, f"only {len(seen_at)} of {DUE_JOBS} started\n{logs()}"
    assert max(seen_at.values()) <= due_at + timedelta(seconds=5), logs()

    assert wait_for(lambda: Job.objects.filter(pk__in=ids, status=S.SUCCEEDED).count()
                    == DUE_JOBS, 10), logs()
    started = sorted(Job.objects.filter(pk__in=ids), key=lambda j: j.started_at)
    for n, job in enumerate(started):
        late = job.started_at - job.run_after  # both by the database's clock
        assert timedelta(0) <= late <= ON_TIME + n * HAND_OVER, (n, job.pk, late, logs())
        assert job.attempt_count == 1

    # The long jobs: never reaped, by the other cluster's reaper or their own (a reaped
    # one is retrying, or dead, or running its second attempt).
    assert wait_for(lambda: all(
        j.status in (*S.terminal(), S.RETRYING) or j.attempt_count > 1
        for j in Job.objects.filter(pk__in=[j.pk for j in long_jobs])), 25), logs()
    for job in Job.objects.filter(pk__in=[j.pk for j in long_jobs]):
        attempts = list(job.attempts.values_list("status", "error_class"))
        assert (job.status, job.attempt_count, attempts) == (
            S.SUCCEEDED, 1, [("succeeded", "")]), (job.queue, logs())
