import time

import psycopg
import pytest
from django.db import connection, transaction

from jobs import enqueue, once
from jobs.exceptions import NotInTransaction, OperationKeyBusy
from jobs.models import Job, JobStatus, OperationKey
from jobs.worker import reaper
from jobs.worker.runner import run_job
from tests.testapp.models import Effect
from tests.unit.worker.test_reaper import claim, expire

pytestmark = pytest.mark.django_db


def test_first_call_records_the_key_and_later_calls_skip():
    with transaction.atomic():
        assert once("invoice:1") is True
        assert once("invoice:1") is False
    with transaction.atomic():
        assert once("invoice:1") is False
    assert OperationKey.objects.filter(key="invoice:1").count() == 1


def test_a_rolled_back_effect_can_happen_again():
    with pytest.raises(RuntimeError), transaction.atomic():
        assert once("invoice:2") is True
        raise RuntimeError("the effect's transaction failed")
    with transaction.atomic():
        assert once("invoice:2") is True


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_is_refused():
    with pytest.raises(NotInTransaction, match="inside a transaction"):
        once("invoice:3")


def test_bad_keys_are_refused():
    with pytest.raises(ValueError, match="1 to 255"), transaction.atomic():
        once("")


def test_welcome_email_is_sent_once_when_the_job_runs_twice():
    first = enqueue("tests.send_welcome_email", 42)
    assert run_job(first.pk) == JobStatus.SUCCEEDED
    # The same business operation delivered again (a second job for the same user,
    # or a retry after the outcome was lost): the effect is skipped.
    second = enqueue("tests.send_welcome_email", 42)
    assert run_job(second.pk) == JobStatus.SUCCEEDED
    assert Job.objects.get(pk=first.pk).result is True
    assert Job.objects.get(pk=second.pk).result is False
    assert Effect.objects.filter(key="welcome-email-sent:42").count() == 1
    assert OperationKey.objects.get(key="welcome-email:42").job_id == first.pk


def test_a_rerun_after_a_crash_before_commit_performs_the_effect_once():
    job = enqueue("tests.send_welcome_email", 7)
    claim(job)  # a worker claimed it and was killed before committing anything
    expire(job)
    reaper.sweep()
    Job.objects.filter(pk=job.pk).update(run_after=job.created_at)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    assert Effect.objects.filter(key="welcome-email-sent:7").count() == 1
    assert Job.objects.get(pk=job.pk).attempts.count() == 2


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_key_held_by_a_transaction_that_does_not_end_is_waited_on_for_a_bound(
        on_postgres, settings):
    """A worker cut off mid-job holds its key in an open transaction: a re-run elsewhere
    waits JOBS['ONCE_LOCK_TIMEOUT_SECONDS'], not until the partition heals."""
    assert on_postgres
    settings.JOBS = {**settings.JOBS, "ONCE_LOCK_TIMEOUT_SECONDS": 0.3}
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as holder:  # the cut-off worker's open transaction
        holder.execute(f"INSERT INTO {OperationKey._meta.db_table} (key, created_at) "
                       "VALUES ('invoice:7', now())")
        started = time.monotonic()
        with transaction.atomic():
            with pytest.raises(OperationKeyBusy, match="waited 0.3 s"):
                once("invoice:7")
            waited = time.monotonic() - started
            # The task's transaction is still usable, with its own lock_timeout back.
            with connection.cursor() as cursor:
                cursor.execute("SHOW lock_timeout")
                assert cursor.fetchone()[0] == "0"
        assert 0.3 <= waited < 2.0
        holder.rollback()  # the partition heals; that transaction never committed
    with transaction.atomic():
        assert once("invoice:7") is True
