import datetime as dt
import math
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from jobs.core.enqueue import enqueue
from jobs.core.registry import get_task, registered_tasks, task
from jobs.core.retry import Backoff
from jobs.exceptions import (
    IdempotencyConflict,
    InvalidJobArguments,
    InvalidJobOption,
    TaskRegistrationError,
    UnknownTaskError,
)
from jobs.models import Job, JobStatus
from jobs.ops import health
from jobs.worker.reservation import reserve_due
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


class TestRegistration:
    def test_explicit_name_and_defaults(self):
        t = get_task("tests.fail_always")
        assert t is tasks.fail_always
        assert t.max_attempts == 3
        assert t.backoff == Backoff(base=1.0, factor=1.0, cap=1.0)
        assert "tests.add" in registered_tasks()

    def test_default_name_is_dotted_path(self):
        @task
        def local_helper(x: int) -> int:
            return x

        assert local_helper.name.endswith("test_default_name_is_dotted_path.<locals>.local_helper")
        assert local_helper(3) == 3

    def test_same_name_for_another_function_is_refused(self):
        with pytest.raises(TaskRegistrationError, match="already registered"):

            @task(name="tests.add")
            def other(a, b):
                return a - b

    def test_parameter_named_like_an_enqueue_option_is_refused(self):
        with pytest.raises(TaskRegistrationError, match="queue"):

            @task(name="tests.bad_param")
            def bad(queue):
                return queue

    def test_bad_task_options_are_refused(self):
        with pytest.raises(TaskRegistrationError, match="timeout"):
            task(name="tests.bad_timeout", timeout=0)(lambda: None)
        with pytest.raises(InvalidJobOption, match="max_attempts"):
            task(name="tests.bad_attempts", max_attempts=0)(lambda: None)


class TestEnqueue:
    def test_returns_a_queued_job_with_task_defaults(self):
        job = enqueue(tasks.fail_always, "boom")
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED
        assert job.task_name == "tests.fail_always"
        assert job.args == ["boom"] and job.kwargs == {}
        assert job.max_attempts == 3
        assert job.queue == "default"
        assert job.run_after <= timezone.now()

    def test_by_name_with_options(self):
        later = timezone.now() + timedelta(hours=1)
        job = enqueue("tests.add", 1, b=2, queue="emails", priority=5, run_after=later,
                      max_attempts=7)
        job.refresh_from_db()
        assert (job.queue, job.priority, job.max_attempts) == ("emails", 5, 7)
        assert job.run_after == later
        assert job.args == [1] and job.kwargs == {"b": 2}

    def test_task_object_and_timedelta_delay(self):
        before = timezone.now()
        job = enqueue(tasks.add, 1, 2, run_after=timedelta(seconds=30))
        assert job.run_after >= before + timedelta(seconds=30)

    @pytest.mark.parametrize(
        ("call", "error", "message"),
        [
            (lambda: enqueue("tests.nope"), UnknownTaskError, "tests.nope"),
            (lambda: enqueue("tests.add", 1), InvalidJobArguments, "missing a required argument"),
            (lambda: enqueue("tests.add", 1, 2, 3), InvalidJobArguments, "too many"),
            (lambda: enqueue("tests.add", 1, 2, c=3), InvalidJobArguments, "unexpected keyword"),
            (lambda: enqueue("tests.add", 1, {1, 2}), InvalidJobArguments, r"args\[1\].*set"),
            (lambda: enqueue("tests.add", 1, b=dt.date(2026, 1, 1)), InvalidJobArguments,
             r"kwargs\['b'\].*date"),
            (lambda: enqueue("tests.add", 1, math.nan), InvalidJobArguments, "JSON"),
            (lambda: enqueue("tests.add", 1, 2, queue=""), InvalidJobOption, "queue"),
            (lambda: enqueue("tests.add", 1, 2, queue="q" * 65), InvalidJobOption, "queue"),
            (lambda: enqueue("tests.add", 1, 2, priority="high"), InvalidJobOption, "priority"),
            (lambda: enqueue("tests.add", 1, 2, priority=5000), InvalidJobOption, "priority"),
            (lambda: enqueue("tests.add", 1, 2, max_attempts=0), InvalidJobOption,
             "max_attempts"),
            (lambda: enqueue("tests.add", 1, 2, run_after=dt.datetime(2030, 1, 1)),
             InvalidJobOption, "timezone-aware"),
            (lambda: enqueue("tests.add", 1, 2, run_after=timedelta(seconds=-1)),
             InvalidJobOption, "negative"),
            (lambda: enqueue("tests.add", 1, 2, run_after=30), InvalidJobOption, "timedelta"),
            (lambda: enqueue("tests.add", 1, 2, idempotency_key=""), InvalidJobOption,
             "idempotency_key"),
        ],
    )
    def test_bad_input_raises_a_clear_error_and_writes_nothing(self, call, error, message):
        with pytest.raises(error, match=message):
            call()
        assert Job.objects.count() == 0

    def test_a_model_instance_is_refused_with_advice(self):
        job = enqueue("tests.add", 1, 2)
        with pytest.raises(InvalidJobArguments, match="id instead of a model instance"):
            enqueue("tests.add", job, 2)

    def test_idempotency_key_returns_the_first_job_for_the_same_work(self):
        first = enqueue("tests.add", 1, 2, idempotency_key="order-1")
        second = enqueue("tests.add", 1, b=2, idempotency_key="order-1")
        assert second.pk == first.pk
        assert Job.objects.count() == 1

    @pytest.mark.parametrize(("task", "args"), [("tests.add", (5, 5)), ("tests.noop", ())])
    def test_an_idempotency_key_of_other_work_is_a_conflict_not_the_first_job(self, task, args):
        first = enqueue("tests.add", 1, 2, idempotency_key="order-1")
        with transaction.atomic():
            with pytest.raises(IdempotencyConflict, match=str(first.pk)) as refused:
                enqueue(task, *args, idempotency_key="order-1")
            assert Job.objects.count() == 1  # the caller's transaction is still usable
        assert refused.value.existing_job_id == first.pk


@pytest.mark.django_db(transaction=True)
class TestTransactionalEnqueue:
    def test_rolled_back_job_never_existed_and_is_never_dispatched(self):
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue("tests.add", 1, 2)
            raise RuntimeError("the view failed after enqueueing")
        assert Job.objects.count() == 0
        assert reserve_due("default", 10) == []

    def test_uncommitted_job_is_invisible_to_a_cluster_connection(self, on_postgres):
        seen: list = []

        def other_process_view():
            seen.append(Job.objects.count())
            close_old_connections()
            connection.close()

        with transaction.atomic():
            enqueue("tests.add", 1, 2)
            if connection.vendor == "postgresql":
                t = threading.Thread(target=other_process_view)
                t.start()
                t.join()
        if connection.vendor == "postgresql":
            assert seen == [0]  # another connection sees nothing before commit
        assert [j.status for j in Job.objects.all()] == [JobStatus.QUEUED]
        assert len(reserve_due("default", 10)) == 1  # after commit it is handed over

    def test_concurrent_enqueues_with_one_key_create_one_job(self, on_postgres):
        barrier = threading.Barrier(6)
        ids, errors = [], []

        def worker():
            try:
                barrier.wait()
                ids.append(enqueue("tests.add", 1, 2, idempotency_key="signup-7").pk)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(set(ids)) == 1 and len(ids) == 6
        assert Job.objects.filter(idempotency_key="signup-7").count() == 1


class TestRefusalsBeforeAnySql:
    """Every refusal names the argument and the rule, writes nothing, and leaves the
    caller's transaction usable (on PostgreSQL a failed statement would poison it)."""

    @pytest.mark.parametrize(
        ("args", "kwargs", "message"),
        [
            (("a\x00b", 1), {}, r"args\[0\] contains a NUL character"),
            (("ok",), {"b": ["x", "\ud800"]}, r"kwargs\['b'\]\[1\] contains the lone surrogate"),
            (({1: "a", "1": "b"}, 1), {}, r"args\[0\] has the key 1 \(int\)"),
            (({"k\x00": 1}, 1), {}, r"the key 'k\\x00' of args\[0\] contains a NUL"),
            (((1, 2), 1), {}, r"args\[0\] is a tuple.*pass a list"),
            ((1.5, 10 ** 5000), {}, r"args\[1\] is an integer of more than 4300 digits"),
        ],
    )
    def test_values_that_would_not_come_back_unchanged(self, args, kwargs, message):
        with transaction.atomic():
            with pytest.raises(InvalidJobArguments, match=message):
                enqueue("tests.add", *args, **kwargs)
            assert Job.objects.count() == 0  # a further query in the same atomic() works

    def test_nesting_deeper_than_the_limit_is_refused_without_recursion_error(self):
        deep: list = []
        for _ in range(10_000):
            deep = [deep]
        with pytest.raises(InvalidJobArguments, match=r"nested more than 64 levels"):
            enqueue("tests.add", deep, 1)
        assert enqueue("tests.add", [[[[1]]]], 1).args == [[[[[1]]]], 1]

    def test_arguments_over_the_size_limit_are_refused_at_once(self, settings):
        settings.JOBS = {**settings.JOBS, "MAX_ARGUMENTS_BYTES": 1000}
        with pytest.raises(InvalidJobArguments, match=r"larger than the limit of 1,000 bytes"):
            enqueue("tests.add", "x" * 600, "y" * 600)
        with pytest.raises(InvalidJobArguments, match=r"larger than the limit"):
            enqueue("tests.add", list(range(10_000_000)), 1)  # stops early, not after 80 MB
        assert Job.objects.count() == 0

    def test_the_exact_size_counts_utf8_bytes(self, settings):
        settings.JOBS = {**settings.JOBS, "MAX_ARGUMENTS_BYTES": 1000}
        with pytest.raises(InvalidJobArguments, match=r"larger than the limit"):
            enqueue("tests.add", "é" * 600, 1)  # 600 characters, 1,200 bytes
        assert enqueue("tests.add", "e" * 600, 1).args[0] == "e" * 600

    @pytest.mark.parametrize(
        ("run_after", "message"),
        [
            (timedelta(days=10 ** 6), r"delay of 1000000 days; the limit is 3650"),
            (datetime(9999, 12, 31, tzinfo=UTC), r"more than 3650 days ahead"),
        ],
    )
    def test_run_after_out_of_range(self, run_after, message):
        with transaction.atomic():
            with pytest.raises(InvalidJobOption, match=message):
                enqueue("tests.add", 1, 2, run_after=run_after)
            assert Job.objects.count() == 0

    def test_enqueued_by_must_be_a_saved_user(self):
        unsaved = get_user_model()(username="ghost")
        with transaction.atomic():
            with pytest.raises(InvalidJobOption, match="must be a saved User"):
                enqueue("tests.add", 1, 2, enqueued_by=unsaved)
            with pytest.raises(InvalidJobOption, match="must be a User or None, got str"):
                enqueue("tests.add", 1, 2, enqueued_by="alice")
            saved = get_user_model().objects.create(username="alice")
            assert enqueue("tests.add", 1, 2, enqueued_by=saved).enqueued_by_id == saved.pk

    def test_a_deleted_user_is_refused_rather_than_failing_the_callers_commit(self):
        user = get_user_model().objects.create(username="gone")
        get_user_model().objects.filter(pk=user.pk).delete()
        with pytest.raises(InvalidJobOption, match="is not in the database"):
            enqueue("tests.add", 1, 2, enqueued_by=user)

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("queue", "re\x00ports", r"queue must be .*no NUL.*got 're\\x00ports'"),
            ("idempotency_key", "key\x00", "idempotency_key contains a NUL"),
        ],
    )
    def test_option_text_the_database_cannot_store(self, option, value, message):
        with pytest.raises(InvalidJobOption, match=message):
            enqueue("tests.add", 1, 2, **{option: value})


@pytest.mark.django_db
def test_a_run_after_in_the_past_means_now_for_ordering_and_waiting_figures():
    before = timezone.now()
    ancient = enqueue("tests.add", 1, 2, run_after=datetime(1, 1, 2, tzinfo=UTC), priority=0)
    urgent = enqueue("tests.add", 3, 4, priority=1000)
    ancient.refresh_from_db()
    # Stored as the moment it was enqueued: it cannot have waited before it existed.
    assert before <= ancient.run_after <= timezone.now()
    # So it does not jump ahead of priority 1000 through aging...
    assert reserve_due("default", 2)[0] == urgent.pk
    # ...and /healthz does not report a wait of centuries.
    assert health.check()["oldest_due_wait_seconds"] < 60
