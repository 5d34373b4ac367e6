"""A queue no cluster serves, with real clusters: each running cluster says so once in
its log (not at every refresh), and again only after it was served in between."""

import pytest

from jobs import enqueue
from jobs.models import Job, JobStatus
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REFRESH = 0.3  # seconds: the watch looks at every refresh
WARNING = "queue 'reports' has 1 due job(s)"
SERVED_AGAIN = "queue 'reports' is served again"


def test_a_running_cluster_warns_once_per_episode(cluster_factory, settings):
    settings.JOBS = {"CLUSTER_REFRESH_SECONDS": REFRESH}
    env = {"JOBS_CLUSTER_REFRESH_SECONDS": str(REFRESH)}
    plain = cluster_factory(name="plain", env=env, queues=["default"])
    job = enqueue("tests.add", 1, 2, queue="reports")
    assert wait_for(lambda: WARNING in plain.log(), timeout=30), plain.log()
    assert "qcluster --queues reports" in plain.log()

    # A cluster for the queue starts (seconds: many refreshes of `plain` meanwhile), runs
    # the job, and `plain` says the episode ended: it warned once in all that time.
    reports = cluster_factory(name="reports", env=env, queues=["reports"])
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED,
                    timeout=30), reports.log()
    assert wait_for(lambda: SERVED_AGAIN in plain.log(), timeout=10), plain.log()
    assert plain.log().count(WARNING) == 1
    assert WARNING not in reports.log()  # it served the queue from its first refresh

    # The queue's cluster stops; a new job there is a new episode, warned again.
    reports.stop()
    enqueue("tests.add", 3, 4, queue="reports")
    assert wait_for(lambda: plain.log().count(WARNING) == 2, timeout=30), plain.log()
