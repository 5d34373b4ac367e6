"""The cluster registry with real clusters: a live one refreshes its row with its
processes and the job in hand; a killed one is gone within three refresh intervals;
one that stops cleanly says so at once."""

import time

import pytest

from jobs import enqueue
from jobs.core import clusters
from jobs.models import Cluster
from tests.cluster import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REFRESH = 0.5  # seconds, so "gone" comes after 1.5 s


def test_a_killed_cluster_is_gone_within_three_refreshes(cluster_factory, on_postgres, settings):
    settings.JOBS = {"CLUSTER_REFRESH_SECONDS": REFRESH}  # the readers' side (this process)
    env = {"JOBS_CLUSTER_REFRESH_SECONDS": str(REFRESH)}  # the clusters' side
    doomed = cluster_factory(name="doomed", env=env, queues=["default"])
    survivor = cluster_factory(name="survivor", env=env, queues=["other"])
    assert wait_for(lambda: clusters.alive().count() == 2, timeout=20), doomed.log()
    job = enqueue("tests.sleep", 30)
    row = Cluster.objects.get(name="doomed")
    assert row.queues == ["default"] and row.workers == 2 and len(row.pids) >= 4
    assert wait_for(lambda: Cluster.objects.get(pk=row.pk).jobs_in_hand == 1, timeout=15)
    job.refresh_from_db()
    assert job.lease_owner in {f"{row.host}:{pid}" for pid in Cluster.objects.get(pk=row.pk).pids}
    # The sentinel said which of those processes are the two workers.
    assert wait_for(lambda: len(Cluster.objects.get(pk=row.pk).worker_pids) == 2, timeout=10)
    fresh = Cluster.objects.get(pk=row.pk)
    assert set(fresh.worker_pids) <= set(fresh.pids)
    assert int(job.lease_owner.rpartition(":")[2]) in fresh.worker_pids

    doomed.kill()
    killed_at = time.monotonic()
    assert wait_for(lambda: not clusters.alive().filter(pk=row.pk).exists(), timeout=10)
    gone_in = time.monotonic() - killed_at
    assert gone_in <= REFRESH * clusters.MISSED_REFRESHES + 1.0
    assert list(clusters.alive().values_list("name", flat=True)) == ["survivor"]

    survivor.stop()
    stopped = Cluster.objects.get(name="survivor")
    assert stopped.stopped_at is not None and not clusters.is_alive(stopped)
