"""An action on every matching job, carried out by a real cluster: the operation's own job
is found (jobs.tasks is discovered), runs on the default queue and reports the truth."""

import pytest

from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, JobStatus, OperationStatus, OperatorAction
from jobs.ops import bulk
from tests.cluster import wait_for
from tests.factories import JobFactory, StaffFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = JobStatus


def test_a_cluster_carries_out_requeue_of_every_dead_job_of_a_cause(cluster_factory,
                                                                    on_postgres):
    for i in range(40):
        job = JobFactory(task_name="tests.noop", args=[])
        claimed = transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)
        message = f"upstream {i} timed out" if i % 4 else "bad row 7"
        transitions.fail(claimed, ErrorInfo("TimeoutError", message), retry_at=None)
    admin = StaffFactory(is_superuser=True)
    row = bulk.start("requeue", admin, {"status": S.DEAD,
                                        "cause": "TimeoutError: upstream <n> timed out"})
    assert row.matched == 30
    cluster = cluster_factory(name="default", queues=["default"])

    def finished() -> bool:
        return OperatorAction.objects.get(pk=row.pk).status == OperationStatus.DONE

    assert wait_for(finished, 60), cluster.log()[-3000:]
    row.refresh_from_db()
    assert (row.done, row.skipped) == (30, 0) and bulk.report(row) == "Requeued 30, skipped 0."
    assert Job.objects.get(pk=row.job_id).status == S.SUCCEEDED
    # The requeued jobs then ran on the same cluster; the other cause stayed dead.
    assert wait_for(lambda: Job.objects.filter(task_name="tests.noop",
                                               status=S.SUCCEEDED).count() == 30, 60)
    assert Job.objects.filter(task_name="tests.noop", status=S.DEAD).count() == 10
