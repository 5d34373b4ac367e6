"""Django's standard task API, end to end through a real cluster, using only the
public API of Django's task framework (a task module written as Django's docs show it)."""

import pytest

from tests.cluster import wait_for
from tests.framework import TaskResultStatus, default_task_backend
from tests.testapp.standard_tasks import always_fails, flaky, multiply, nap

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def settled(result, status, timeout=30.0) -> bool:
    def check() -> bool:
        result.refresh()
        return result.status == status
    return wait_for(check, timeout=timeout)


def test_success_failure_retries_and_context_through_a_cluster(cluster_factory, on_postgres):
    product = multiply.enqueue(6, 7)
    retried = flaky.using(priority=20).enqueue(succeed_on=2)
    failing = always_fails.enqueue("no such row")
    slow = nap.enqueue(1.5)

    # Before any worker: READY, no attempts, no return value yet.
    for result in (product, retried, failing, slow):
        fresh = default_task_backend.get_result(result.id)
        assert fresh.status == TaskResultStatus.READY and fresh.attempts == 0
        with pytest.raises(ValueError, match="not finished"):
            fresh.return_value  # noqa: B018 - the property raises

    cluster = cluster_factory(queues=["default", "reports"])
    assert settled(slow, TaskResultStatus.RUNNING), cluster.log()
    assert slow.started_at is not None and slow.finished_at is None

    assert settled(product, TaskResultStatus.SUCCESSFUL), cluster.log()
    assert product.return_value == 42 and product.attempts == 1 and product.errors == []

    assert settled(retried, TaskResultStatus.SUCCESSFUL), cluster.log()
    assert retried.return_value == {"attempt": 2, "id": retried.id}  # takes_context
    assert retried.attempts == 2 and len(retried.worker_ids) == 2
    (error,) = retried.errors
    assert error.exception_class is ValueError and "attempt 1 is too early" in error.traceback

    assert settled(failing, TaskResultStatus.FAILED), cluster.log()
    assert [e.exception_class for e in failing.errors] == [LookupError, LookupError]
    with pytest.raises(ValueError, match="failed"):
        failing.return_value  # noqa: B018 - the property raises

    assert settled(slow, TaskResultStatus.SUCCESSFUL), cluster.log()
    assert slow.return_value == 1.5 and slow.finished_at >= slow.started_at
