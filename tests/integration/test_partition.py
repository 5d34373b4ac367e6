"""A cluster cut off from the database mid-transaction cannot hold the others up for
longer than the stated bound (issue 22, item 3; docs/deployment.md, "Outages and
cut-off workers").

Cluster A reaches PostgreSQL through a proxy that stops forwarding (no reset: both
kernels keep acknowledging, so neither TCP keepalives nor tcp_user_timeout notice);
cluster B is connected directly. Two of A's jobs sit inside their transactions
holding once() keys when the proxy goes silent for 20 s. B must re-run both within
lease + reaper interval + the first retry's backoff (+ slack for two shared cores),
keep at least half its throughput meanwhile, and, after the heal, nothing A still
writes for those attempts may count.
"""

import time
from pathlib import Path

import pytest
from django.db import connection

from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus, OperationKey
from tests.cluster import database_url, wait_for
from tests.proxy import PausableProxy
from tests.testapp.models import Effect

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only,
              pytest.mark.django_db(transaction=True)]
S = JobStatus

LEASE, REAPER, BACKOFF = 3.0, 0.5, 0.5  # BACKOFF: tests.hold_key's retry ceiling
# What two busy shared cores add: B's pusher hearing the retry, a worker taking it.
SLACK = 3.0
BOUND = LEASE + REAPER + BACKOFF + SLACK
PARTITION = 20.0
ENV = {"JOBS_LEASE_SECONDS": str(LEASE), "JOBS_REAPER_INTERVAL_SECONDS": str(REAPER),
       "JOBS_RESERVATION_SECONDS": "3"}
HELD, STREAM = "part_held", "part_stream"
STREAM_JOBS, STREAM_SECONDS = 1500, 0.04
BASELINE = 6.0


def db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


def succeeded_between(start, end) -> int:
    return Job.objects.filter(queue=STREAM, status=S.SUCCEEDED, finished_at__gte=start,
                              finished_at__lt=end).count()


def test_a_cut_off_cluster_holds_the_other_up_no_longer_than_the_bound(
    cluster_factory, on_postgres, tmp_path: Path
):
    assert on_postgres
    s = connection.settings_dict
    proxy = PausableProxy((s.get("HOST") or "127.0.0.1", int(s.get("PORT") or 5432)))
    try:
        direct = database_url()
        via_proxy = direct.replace(f"@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/",
                                   f"@127.0.0.1:{proxy.port}/")
        assert via_proxy != direct
        a = cluster_factory(name="part_a", workers=2, queues=[HELD],
                            env={**ENV, "DATABASE_URL": via_proxy})
        # Ranked before the stream's backlog, so B's re-run waits for no queue.
        held = [enqueue("tests.hold_key", f"part:{i}", str(tmp_path), cooperative,
                        queue=HELD, priority=100)
                for i, cooperative in enumerate((True, False))]
        keys = [j.args[0] for j in held]
        assert wait_for(lambda: all((tmp_path / f"{k}.held").exists() for k in keys), 60), (
            a.log()[-3000:])
        for _ in range(STREAM_JOBS):
            enqueue("tests.sleep", STREAM_SECONDS, queue=STREAM)
        b = cluster_factory(name="part_b", workers=2, queues=[HELD, STREAM], env=ENV)
        assert wait_for(lambda: Job.objects.filter(queue=STREAM, status=S.SUCCEEDED).count()
                        >= 20, 60), b.log()[-3000:]

        start = db_now()
        time.sleep(BASELINE)
        cut = db_now()
        proxy.pause()
        cut_at = time.monotonic()
        wait_for(lambda: Job.objects.filter(pk__in=[j.pk for j in held],
                                            status=S.SUCCEEDED).count() == 2,
                 PARTITION - 3)
        time.sleep(max(0.0, cut_at + PARTITION - time.monotonic()))
        healed = db_now()
        proxy.resume()
        (tmp_path / "release").touch()

        # After the heal, A learns what happened to both attempts and writes nothing.
        assert wait_for(lambda: Job.objects.filter(pk__in=[j.pk for j in held],
                                                   status=S.SUCCEEDED).count() == 2, 60), (
            b.log()[-3000:])
        assert wait_for(lambda: all(f"job {j.pk} failed after it was taken" in a.log()
                                    or f"job {j.pk} was taken from attempt 1 (reaped" in a.log()
                                    for j in held), 30), a.log()[-4000:]
    finally:
        proxy.close()

    log_a = a.log()
    done = max(Job.objects.get(pk=j.pk).finished_at for j in held)
    baseline = succeeded_between(start, cut) / (cut - start).total_seconds()
    during = succeeded_between(cut, healed) / (healed - cut).total_seconds()
    report = (f"re-runs done {(done - cut).total_seconds():.1f} s after the cut (bound "
              f"{BOUND:.1f} s); B's throughput {baseline:.1f} jobs/s before, {during:.1f} "
              f"during ({during / baseline:.2f})")
    print(report)
    assert (done - cut).total_seconds() <= BOUND, report + "\n" + b.log()[-4000:]
    assert during >= 0.5 * baseline, report
    for job, key in zip(held, keys, strict=True):
        job.refresh_from_db()
        assert job.result["did"] and job.result["attempt"] > 1, job.result
        first = Attempt.objects.get(job=job, number=1)
        assert first.status == AttemptStatus.LOST, (first.status, first.error_message)
        assert first.error_class == "jobs.exceptions.WorkerLost"
        last = Attempt.objects.get(job=job, number=job.last_attempt_number)
        assert last.status == AttemptStatus.SUCCEEDED
        assert Effect.objects.filter(key=key).count() == 1
        assert OperationKey.objects.filter(key=key).count() == 1
        # The cut-off attempt's late row never committed: its transaction was ended.
        assert not Effect.objects.filter(key=f"late:{key}").exists()
        # A said, during the partition, that it had lost the job.
        assert f"job {job.pk} attempt 1: no lease renewal for" in log_a, log_a[-4000:]
    assert not Attempt.objects.filter(status=AttemptStatus.RUNNING,
                                      job__queue=HELD).exists()
