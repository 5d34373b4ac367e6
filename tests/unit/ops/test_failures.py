"""Failures grouped by cause: what is failing and why, before anyone opens a job."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, JobStatus, Step, StepStatus
from jobs.ops import failures, search
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
S = JobStatus


def failed(task="tests.add", error=("ValueError", "bad row 7"), *, retry=False, at=None,
           step=None):
    job = JobFactory(task_name=task)
    claimed = transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)
    if step:
        Step.objects.create(job=job, position=0, name=step, status=StepStatus.RUNNING,
                            attempt_number=claimed.attempt.number)
    info = ErrorInfo(error[0], error[1], traceback=f"Traceback ...\n{error[0]}: {error[1]}")
    transitions.fail(claimed, info, now=at,
                     retry_at=timezone.now() + timedelta(minutes=5) if retry else None)
    return Job.objects.get(pk=job.pk)


def test_a_recorded_failure_stores_its_cause_and_when():
    job = failed(error=("ValueError", "bad row 7 in 'a.csv'"))
    assert job.failure_cause == "ValueError: bad row <n> in '…'"
    assert job.last_failed_at is not None and job.status == S.DEAD


def test_jobs_group_by_task_and_cause_biggest_first():
    t0 = timezone.now() - timedelta(hours=2)
    for i in range(3):
        failed(error=("ValueError", f"bad row {i}"), at=t0 + timedelta(minutes=i))
    failed(error=("ValueError", "bad row 99"), retry=True)
    failed(task="tests.noop", error=("ValueError", "bad row 1"))  # same cause, other task
    failed(error=("KeyError", "'sku'"), step="load")
    JobFactory(status=S.SUCCEEDED, failure_cause="ValueError: bad row <n>")  # history only

    top, *rest = failures.groups()
    assert (top.task_name, top.cause, top.count) == ("tests.add", "ValueError: bad row <n>", 4)
    assert (top.dead, top.retrying) == (3, 1)
    assert top.first_seen == t0 and top.last_seen > t0 + timedelta(minutes=2)
    assert "bad row" in top.sample_attempt.traceback
    assert {(g.task_name, g.cause, g.count) for g in rest} == {
        ("tests.noop", "ValueError: bad row <n>", 1), ("tests.add", "KeyError: '…'", 1)}
    keyed = next(g for g in rest if g.cause == "KeyError: '…'")
    assert keyed.failing_step.name == "load"


def test_grouping_costs_the_same_queries_for_many_groups(django_assert_max_num_queries):
    for i in range(12):
        failed(error=(f"Error{i}", "x"))
    with django_assert_max_num_queries(6):
        found = failures.groups()
        assert len(found) == 12 and all(g.sample_attempt for g in found)


def test_a_requeued_job_leaves_its_group():
    job = failed()
    transitions.requeue([job.pk])
    assert failures.groups() == []
    assert Job.objects.get(pk=job.pk).failure_cause == ""


def test_a_group_filter_selects_exactly_its_jobs():
    group_jobs = {failed().pk for _ in range(2)}
    failed(error=("KeyError", "'x'"))
    [group, _] = failures.groups()
    matched = set(search.matching(group.filters).values_list("pk", flat=True))
    assert matched == group_jobs


def test_first_seen_survives_a_requeue_of_the_groups_jobs():
    """A requeue clears a job's failure (a fresh cycle); the group was still first seen
    at its earliest failure, which the attempts keep."""
    t0 = timezone.now() - timedelta(hours=3)
    first = failed(error=("ValueError", "bad row 1"), at=t0)
    failed(error=("ValueError", "bad row 2"), at=t0 + timedelta(hours=1))
    transitions.requeue([first.pk])
    [group] = failures.groups()
    assert group.count == 1 and group.first_seen == t0 + timedelta(hours=1)  # t0's job left
    # It fails again with the same cause: back in the group, first seen at t0 again.
    claimed = transitions.claim(first.pk, worker_host="h", worker_pid=1, lease_seconds=30)
    transitions.fail(claimed, ErrorInfo("ValueError", "bad row 3", "tb"), retry_at=None)
    [group] = failures.groups()
    assert group.count == 2 and group.first_seen == t0
    assert group.last_seen > t0 + timedelta(hours=2)


def test_an_earlier_failure_of_another_class_does_not_count_as_the_groups_first():
    t0 = timezone.now() - timedelta(hours=3)
    job = failed(error=("KeyError", "'sku'"), at=t0)
    transitions.requeue([job.pk])
    claimed = transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)
    later = timezone.now() - timedelta(minutes=1)
    transitions.fail(claimed, ErrorInfo("ValueError", "bad row 3", "tb"), retry_at=None,
                     now=later)
    [group] = failures.groups()
    assert group.cause == "ValueError: bad row <n>" and group.first_seen == later
