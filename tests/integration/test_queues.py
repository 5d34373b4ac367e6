"""A cluster serves the queues it is given, and only those."""

import subprocess
import sys

import pytest

from jobs import enqueue
from jobs.models import Attempt, Job, JobStatus
from tests.cluster import ROOT, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = JobStatus


def succeeded(*jobs) -> bool:
    return Job.objects.filter(pk__in=[j.pk for j in jobs], status=S.SUCCEEDED).count() == len(jobs)


def test_a_job_runs_on_the_cluster_that_serves_its_queue_and_not_on_another(cluster_factory):
    default = cluster_factory(name="default", workers=1)
    on_default = enqueue("tests.noop")
    on_reports = enqueue("tests.noop", queue="reports")
    # The default cluster is polling (it ran its own job) and left the other queue alone.
    assert wait_for(lambda: succeeded(on_default), 30), default.log()[-3000:]
    assert Job.objects.get(pk=on_reports.pk).status == S.QUEUED
    assert not Attempt.objects.filter(job=on_reports).exists()

    reports = cluster_factory(name="reports-cluster", workers=1, queues=["reports"])
    assert wait_for(lambda: succeeded(on_reports), 30), reports.log()[-3000:]
    attempt = Attempt.objects.get(job=on_reports)
    default_pids = {a.worker_pid for a in Attempt.objects.filter(job=on_default)}
    assert attempt.worker_pid not in default_pids
    assert "serves queue(s) reports" in reports.log()


def test_one_cluster_serves_several_queues(cluster_factory):
    cluster = cluster_factory(name="mixed", workers=2, queues=["emails", "reports"])
    jobs = [enqueue("tests.noop", queue=q) for q in ("emails", "reports", "emails")]
    assert wait_for(lambda: succeeded(*jobs), 30), cluster.log()[-3000:]


@pytest.mark.parametrize(("args", "message"), [
    (["--queues", ""], "--queues: queue must be a non-empty string"),
    (["--queues", "ok," + "x" * 65], "--queues: queue must be a non-empty string of at most 64"),
])
def test_bad_queue_names_stop_the_cluster_before_it_starts(args, message):
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "qcluster", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr
