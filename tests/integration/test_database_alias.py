"""The engine reads and writes one database, JOBS['DATABASE'], whatever the project's
routers say (jobs.database).

A project with a read replica routes reads there. A replica lags: a job read from it
may not exist yet, or show a state it has already left. Here the replica is migrated
and empty (it lags without end), and tests.routers.PrimaryReplicaRouter sends it every
read: each engine path below fails if any of its reads follows the router, and the
replica must be left as it was found (nothing written there either).
"""

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.models import (
    Attempt,
    Cluster,
    Job,
    JobStatus,
    OperationKey,
    OperatorAction,
    Schedule,
    Step,
)
from jobs.ops import bulk, operations
from jobs.ops.presentation import short_id
from jobs.scheduling.firing import create_schedule, fire_due
from jobs.worker import reaper
from jobs.worker.broker import JobTableBroker
from jobs.worker.runner import run_job
from tests.cluster import wait_for
from tests.testapp.models import Effect

pytestmark = [pytest.mark.postgres_only,
              pytest.mark.django_db(databases=["default", "replica"])]
S = JobStatus
PRIMARY, REPLICA = "default", "replica"


def rows(alias: str) -> dict[str, int]:
    return {m._meta.label: m._base_manager.using(alias).count() for m in apps.get_models()}


def on_primary(job: Job) -> Job:
    return Job.objects.using(PRIMARY).get(pk=job.pk)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client



class TestBehindAPrimaryReplicaRouter:
    @pytest.fixture(autouse=True)
    def router(self, settings):
        settings.DATABASE_ROUTERS = ["tests.routers.PrimaryReplicaRouter"]
        # Sessions in a cookie: a session row written to default would not be read back
        # from the replica, and the pages would answer with the login page.
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

    @pytest.fixture
    def operator(self, router):
        """A superuser on default, replicated long ago: the replica has users, not jobs."""
        user = get_user_model()(username="ops", is_staff=True, is_superuser=True)
        user.set_password("pw")
        user.save(using=PRIMARY)
        user.save(using=REPLICA, force_insert=True)
        return user

    @pytest.fixture(autouse=True)
    def replica_untouched(self, router, operator):
        before = rows(REPLICA)
        yield
        assert rows(REPLICA) == before

    @pytest.fixture(autouse=True)
    def no_maintenance_thread(self, monkeypatch):
        monkeypatch.setattr(JobTableBroker, "run_maintenance", False)

    def test_enqueue_with_a_key_twice_returns_the_first_job(self):
        first = enqueue("tests.add", 1, 2, idempotency_key="k")
        second = enqueue("tests.add", 1, 2, idempotency_key="k")
        assert second.pk == first.pk
        assert Job.objects.using(PRIMARY).filter(idempotency_key="k").count() == 1

    def test_a_job_is_reserved_and_runs_to_success_with_its_steps_and_effects_on_default(self):
        job = enqueue("tests.five_steps", [])
        emailed = enqueue("tests.send_welcome_email", 7)
        handed = JobTableBroker(list_key="default", queues=["default"]).dequeue()
        assert sorted(ack for ack, _ in handed) == sorted([str(job.pk), str(emailed.pk)])
        assert run_job(job.pk) == S.SUCCEEDED
        assert run_job(emailed.pk) == S.SUCCEEDED
        ran = on_primary(job)
        assert (ran.status, ran.result, ran.attempt_count) == (S.SUCCEEDED, 5, 1)
        assert list(Attempt.objects.using(PRIMARY).filter(job_id=job.pk)
                    .values_list("number", "status")) == [(1, "succeeded")]
        assert list(Step.objects.using(PRIMARY).filter(job_id=job.pk).order_by("position")
                    .values_list("name", "status")) == [(f"s{i}", "succeeded") for i in range(1, 6)]
        assert on_primary(emailed).result is True
        assert OperationKey.objects.using(PRIMARY).filter(key="welcome-email:7",
                                                          job_id=emailed.pk).exists()
        assert Effect.objects.using(PRIMARY).filter(key="welcome-email-sent:7").exists()

    def test_the_reaper_finds_and_retries_a_job_whose_lease_lapsed(self):
        job = enqueue("tests.add", 1, 2)
        transitions.claim(job.pk, worker_host="box", worker_pid=7, lease_seconds=30)
        Job.objects.using(PRIMARY).filter(pk=job.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert reaper.sweep().retried == [job.pk]
        assert on_primary(job).status == S.RETRYING
        assert Attempt.objects.using(PRIMARY).get(job_id=job.pk).status == "lost"

    def test_a_due_schedule_fires_once(self):
        schedule = create_schedule("nightly", "tests.noop", "0 * * * *", "UTC")
        Schedule.objects.using(PRIMARY).filter(pk=schedule.pk).update(
            next_run_at=timezone.now() - timedelta(seconds=1))
        assert fire_due() == 1
        assert fire_due() == 0
        fired = Schedule.objects.using(PRIMARY).get(pk=schedule.pk)
        assert fired.last_job_id is not None and fired.last_error == ""
        assert Job.objects.using(PRIMARY).get(pk=fired.last_job_id).task_name == "tests.noop"

    def test_requeue_and_a_bulk_requeue_act_on_the_job(self, operator):
        job = enqueue("tests.fail_permanent", "declined")
        assert run_job(job.pk) == S.DEAD
        report = operations.perform("requeue", operator, [job.pk])
        assert report.result.done == [job.pk], report.message
        assert on_primary(job).status == S.QUEUED
        transitions.cancel([job.pk])
        row = bulk.start("requeue", operator, {"task": "tests.fail_permanent"})
        assert row.matched == 1
        assert run_job(row.job_id) == S.SUCCEEDED
        assert OperatorAction.objects.using(PRIMARY).get(pk=row.pk).status == "done"
        assert on_primary(job).status == S.QUEUED

    def test_admin_changelist_and_change_page_show_the_job(self, operator):
        job = enqueue("tests.add", 1, 2)
        client = client_for(operator)
        listing = client.get(reverse("admin:jobs_job_changelist"))
        assert listing.status_code == 200
        assert [j.pk for j in listing.context["cl"].result_list] == [job.pk]
        page = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
        assert page.status_code == 200
        assert str(job.pk) in page.content.decode()

    def test_dashboard_pages_and_the_status_api_show_the_job(self, operator):
        job = enqueue("tests.add", 1, 2)
        run_job(job.pk)
        client = client_for(operator)
        for url in (reverse("dashboard:jobs"), reverse("dashboard:job", args=[job.pk]),
                    reverse("dashboard:job-live", args=[job.pk])):
            response = client.get(url)
            assert response.status_code == 200, url
            assert short_id(job.pk) in response.content.decode(), url
        assert client.get(reverse("dashboard:overview")).status_code == 200
        body = client.get(reverse("jobs_api:job-status", args=[job.pk])).json()
        assert (body["status"], body["result"]) == ("succeeded", 3)


@pytest.mark.django_db(databases=["default", "jobsdb"])
def test_a_database_of_its_own_holds_every_engine_row(settings):
    """JOBS['DATABASE'] = "jobsdb": enqueue, run and the admin all use it, and default
    holds nothing of the engine (routers aside: none here)."""
    settings.JOBS = {**settings.JOBS, "DATABASE": "jobsdb"}
    job = enqueue("tests.five_steps", [])
    assert run_job(job.pk) == S.SUCCEEDED
    assert Job.objects.using("jobsdb").get(pk=job.pk).status == S.SUCCEEDED
    assert Step.objects.using("jobsdb").filter(job_id=job.pk, status="succeeded").count() == 5
    user = get_user_model().objects.create_superuser("ops", password="pw")
    client = client_for(user)
    listing = client.get(reverse("admin:jobs_job_changelist"))
    assert [j.pk for j in listing.context["cl"].result_list] == [job.pk]
    assert client.get(reverse("admin:jobs_job_change", args=[job.pk])).status_code == 200
    on_default = {label: n for label, n in rows(PRIMARY).items() if label.startswith("jobs.") and n}
    assert on_default == {}


def listening_on(alias: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                       " AND query LIKE 'LISTEN %%'", [connections[alias].settings_dict["NAME"]])
        return cursor.fetchone()[0] > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases=["default", "jobsdb"])
def test_a_cluster_listens_renews_and_reaps_on_the_engines_own_database(settings,
                                                                         cluster_factory):
    """A real cluster with JOBS_DATABASE=jobsdb (tests.settings names the same test
    database in both processes): its pusher LISTENs there (woken at once, though its
    fallback poll is 30 s), its heartbeat renews a 1.5 s lease there for a 4 s job
    (one attempt), its reaper retries a job whose worker is gone there, and its
    registry row is there."""
    settings.JOBS = {**settings.JOBS, "DATABASE": "jobsdb"}
    cluster = cluster_factory(name="default", workers=1, env={
        "JOBS_DATABASE": "jobsdb", "JOBS_LEASE_SECONDS": "1.5",
        "JOBS_REAPER_INTERVAL_SECONDS": "0.5", "JOBS_LISTEN_FALLBACK_SECONDS": "30"})
    assert wait_for(lambda: listening_on("jobsdb"), timeout=30)
    job = enqueue("tests.sleep", 4)
    lost = enqueue("tests.add", 1, 2, queue="elsewhere")
    transitions.claim(lost.pk, worker_host="gone", worker_pid=1, lease_seconds=1)
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == S.SUCCEEDED, timeout=20)
    assert wait_for(lambda: Job.objects.get(pk=lost.pk).status == S.RETRYING, timeout=10)
    assert Attempt.objects.get(job_id=lost.pk).status == "lost"
    ran = Job.objects.get(pk=job.pk)
    assert ran.started_at - ran.created_at < timedelta(seconds=5)  # woken, not polled
    assert ran.attempt_count == 1 and ran.heartbeat_at is not None
    assert Cluster.objects.using("jobsdb").exists()
    on_default = {label: n for label, n in rows(PRIMARY).items() if label.startswith("jobs.") and n}
    assert on_default == {}
    cluster.kill()  # its pusher sits in a 30 s wait, which a SIGTERM would wait out
