"""Counters incremented in a real cluster's worker processes reach /metrics through
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR)."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs import enqueue
from jobs.models import Job, JobStatus
from tests.cluster import wait_for
from tests.factories import StaffFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_counters_survive_the_clusters_processes(cluster_factory, client, tmp_path,
                                                         monkeypatch, on_postgres):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    jobs = [enqueue("tests.add", i, b=1) for i in range(5)] + [enqueue("tests.fail_permanent", "x")]
    cluster = cluster_factory(env=env)
    final = [JobStatus.SUCCEEDED, JobStatus.DEAD]
    assert wait_for(lambda: Job.objects.filter(status__in=final).count() == len(jobs),
                    timeout=30), cluster.log()
    cluster.stop()  # the workers are gone; their counts must not be

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    client.force_login(StaffFactory())
    text = client.get("/metrics").content.decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("jobs_finished_total", (("outcome", "succeeded"), ("task", "tests.add")))] == 5
    assert samples[("jobs_finished_total",
                    (("outcome", "dead"), ("task", "tests.fail_permanent")))] == 1
    assert samples[("jobs_attempt_duration_seconds_count", (("task", "tests.add"),))] == 5
