"""On a real cluster, a task whose failure is hard to record (unstorable text, sys.exit,
KeyboardInterrupt, an exception whose __str__ raises) ends `failed` with its cause within
seconds: never a `lost` attempt after a lease, and the worker goes on."""

import time

import pytest

import tests.testapp.hostile  # noqa: F401 - registers the hostile.* tasks for enqueue()
from jobs import enqueue
from jobs.models import Attempt, AttemptStatus, Job, JobStatus
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CALLS = [
    (("hostile.raise_text", "surrogate"), "ValueError", "bad \ufffd text"),
    (("hostile.raise_text", "nul"), "ValueError", "ab"),
    (("hostile.unprintable",), "tests.testapp.hostile.Unprintable",
     "<unprintable Unprintable: its __str__ raised RuntimeError>"),
    (("hostile.exit", 3), "SystemExit", "3"),
    (("hostile.keyboard_interrupt",), "KeyboardInterrupt", ""),
]


def test_hostile_failures_are_recorded_as_failures_within_seconds(cluster_factory):
    # A long lease: a failure recorded as "lost" would take 60 s, far past the wait below.
    cluster = cluster_factory(workers=2, env={"JOBS_TASK_MODULES": "tests.testapp.hostile",
                                              "JOBS_LEASE_SECONDS": "60"})
    started = time.monotonic()
    jobs = [enqueue(*call) for call, _, _ in CALLS]
    after = enqueue("tests.add", 1, 2)  # the workers are still there afterwards
    ids = [j.pk for j in jobs]
    assert wait_for(lambda: Job.objects.filter(pk__in=ids, status=JobStatus.DEAD).count()
                    == len(jobs), 20), cluster.log()[-4000:]
    assert time.monotonic() - started < 20
    for job, (_, error_class, message) in zip(jobs, CALLS, strict=True):
        attempt = Attempt.objects.get(job=job)
        assert (attempt.status, attempt.error_class, attempt.error_message) == (
            AttemptStatus.FAILED, error_class, message), job.task_name
    assert not Attempt.objects.filter(status=AttemptStatus.LOST).exists()
    assert wait_for(lambda: Job.objects.get(pk=after.pk).status == JobStatus.SUCCEEDED, 20)
