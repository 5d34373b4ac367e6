"""Unserved queues over generated states (jobs.ops.serving): whatever jobs, clusters
and pauses there are, the answer is exactly the rule — a queue with due queued or
retrying jobs, not paused, that no live cluster lists — with its due count and the
oldest due job's wait, and the overview's queue figures agree with it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from jobs.models import Cluster, Job, JobStatus, QueuePause
from jobs.ops import serving, stats

pytestmark = [pytest.mark.django_db, pytest.mark.property]
QUEUES = ["default", "reports", "emails", "x" * 64]
jobs_ = st.lists(st.tuples(st.sampled_from(QUEUES), st.sampled_from(list(JobStatus)),
                           st.integers(min_value=-3600, max_value=3600)), max_size=12)
clusters_ = st.lists(st.tuples(st.lists(st.sampled_from(QUEUES), max_size=3),
                               st.sampled_from(["alive", "stale", "stopped"])), max_size=3)


@given(jobs=jobs_, clusters=clusters_, paused=st.sets(st.sampled_from(QUEUES)))
def test_unserved_is_exactly_the_rule(jobs, clusters, paused):
    for model in (Job, Cluster, QueuePause):
        model.objects.all().delete()
    now = timezone.now()
    for queue, status, offset in jobs:
        Job.objects.create(task_name="tests.add", queue=queue, status=status,
                           run_after=now + timedelta(seconds=offset))
    for listed, state in clusters:
        Cluster.objects.create(
            name="c", host="h", pid=1, queues=listed, workers=1,
            last_seen_at=now - timedelta(seconds=3600 if state == "stale" else 0),
            stopped_at=now if state == "stopped" else None)
    for queue in paused:
        QueuePause.objects.create(queue=queue)

    served = {q for listed, state in clusters if state == "alive" for q in listed}
    due: dict[str, list[int]] = {}
    for queue, status, offset in jobs:
        if status in JobStatus.runnable() and offset <= 0:
            due.setdefault(queue, []).append(offset)
    expected = {q: (len(o), timedelta(seconds=-min(o))) for q, o in due.items()
                if q not in served and q not in paused}

    state = serving.state(now)
    assert {q.name: (q.due, q.oldest_wait) for q in state.unserved} == expected
    assert [q.name for q in state.unserved] == sorted(expected)
    assert state.clusters_alive == sum(1 for _, s in clusters if s == "alive")
    depths = {d["queue"]: d for d in stats.queue_depths(now)}
    for q in state.unserved:  # the overview's panel shows the same count
        assert depths[q.name]["depth"] == q.due
    queued = sum(1 for _, status, _ in jobs if status in JobStatus.runnable())
    assert sum(d["depth"] + d["later"] for d in depths.values()) == queued
