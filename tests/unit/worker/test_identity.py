"""A worker's identity: host and pid repeat across containers (same host name, pid 1...),
so each worker process draws an id when it spawns and each cluster has its own; two
workers with the same host and pid but different ids are never taken for each other."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import psutil
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import database, enqueue
from jobs.core import clusters, transitions
from jobs.management.commands import qcluster
from jobs.models import Attempt, AttemptStatus, Cluster, Job, JobStatus
from jobs.ops import workers
from jobs.worker import reaper, runner
from tests.ui.dashboard.factories import superuser

pytestmark = pytest.mark.django_db
HOST, PID = "app", 1  # what every container of one image may say


def claim_as(job, worker_id, cluster_id=None):
    return transitions.claim(job.pk, worker_host=HOST, worker_pid=PID, lease_seconds=30,
                             worker_id=worker_id, worker_cluster=cluster_id)


def reap_now(job):
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    reaper.sweep()
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=1))


def registration(name):
    """A cluster registered as every container of one image would: same host, same pid."""
    reg = clusters.Registration(name, ["default"], 2)
    reg.host, reg.pid = HOST, PID
    reg.refresh([PID + 1, PID + 2, PID + 3])
    return reg


# --- The identity itself ---------------------------------------------------------------


def test_each_spawn_draws_a_new_id_beside_host_and_pid(monkeypatch):
    cluster_id = uuid4()
    monkeypatch.setenv(clusters.CLUSTER_ID_ENV, str(cluster_id))
    first = runner.new_worker_identity()
    again = runner.worker_identity()
    respawned = runner.new_worker_identity()
    assert again == first  # kept for the life of the process
    assert (respawned.host, respawned.pid) == (first.host, first.pid)
    assert respawned.id != first.id
    assert first.cluster == respawned.cluster == cluster_id


def test_a_forked_process_does_not_keep_its_parents_id(monkeypatch):
    parent = runner.new_worker_identity()
    monkeypatch.setattr(runner.os, "getpid", lambda: parent.pid + 1)
    child = runner.worker_identity()
    assert child.pid == parent.pid + 1 and child.id != parent.id


def test_the_attempt_records_the_workers_id_and_cluster(monkeypatch):
    cluster_id = uuid4()
    monkeypatch.setenv(clusters.CLUSTER_ID_ENV, str(cluster_id))
    me = runner.new_worker_identity()
    job = enqueue("tests.add", 1, 2)
    assert runner.run_job(job.pk) == JobStatus.SUCCEEDED
    attempt = Attempt.objects.get(job=job)
    assert (attempt.worker_host, attempt.worker_pid) == (me.host, me.pid)
    assert (attempt.worker_id, attempt.worker_cluster) == (me.id, cluster_id)
    assert attempt.worker == f"{me.host}:{me.pid} ({me.id.hex[:8]})"


@pytest.mark.parametrize("vendor_path", ["statement", "transaction"])
def test_both_claim_paths_store_the_identity(vendor_path, monkeypatch):
    if vendor_path == "transaction":  # the path every database but PostgreSQL takes
        monkeypatch.setattr(database.connection, "vendor", "sqlite-like")
    worker_id, cluster_id = uuid4(), uuid4()
    job = enqueue("tests.add", 1, 2)
    claimed = claim_as(job, worker_id, cluster_id)
    assert (claimed.attempt.worker_id, claimed.attempt.worker_cluster) == (worker_id, cluster_id)
    stored = Attempt.objects.get(pk=claimed.attempt.pk)
    assert (stored.worker_id, stored.worker_cluster) == (worker_id, cluster_id)


# --- Same host, same pid, different workers ------------------------------------------


def test_a_reaped_worker_is_not_taken_for_its_successor_with_the_same_host_and_pid():
    job = enqueue("tests.add", 1, 2)
    first = claim_as(job, uuid4(), uuid4())
    reap_now(job)
    second = claim_as(job, uuid4(), uuid4())
    assert second is not None
    assert (first.attempt.worker_host, first.attempt.worker_pid) == (
        second.attempt.worker_host, second.attempt.worker_pid)

    transitions.cancel([job.pk])  # running: asked to stop
    # The heartbeat of the reaped worker finds the job gone; its successor, the cancel.
    assert transitions.renew_lease(first, lease_seconds=30) == (False, False)
    assert transitions.renew_lease(second, lease_seconds=30) == (True, True)
    attempts = {a.number: a for a in Attempt.objects.filter(job=job)}
    assert attempts[first.attempt.number].status == AttemptStatus.LOST
    assert attempts[first.attempt.number].worker_id == first.attempt.worker_id
    assert attempts[second.attempt.number].status == AttemptStatus.RUNNING
    assert attempts[second.attempt.number].worker_id == second.attempt.worker_id


def test_clusters_with_the_same_host_and_pids_count_and_list_only_their_own_jobs(monkeypatch):
    # The sentinel lets go of its connection after the report; this test's holds its
    # transaction.
    monkeypatch.setattr(clusters, "connection", type("Kept", (), {"close": lambda self: None})())
    blue, green = registration("blue"), registration("green")
    job = enqueue("tests.add", 1, 2)
    claimed = claim_as(job, uuid4(), green.id)
    job.refresh_from_db()
    blue.refresh([PID + 1, PID + 2, PID + 3])
    green.refresh([PID + 1, PID + 2, PID + 3])
    held = dict(Cluster.objects.values_list("name", "jobs_in_hand"))
    assert held == {"blue": 0, "green": 1}

    # The sentinel's report of worker pids reaches its own cluster's row only.
    assert clusters.record_worker_pids(green.id, [PID + 2, PID + 3])
    assert Cluster.objects.get(pk=blue.id).worker_pids == []
    assert Cluster.objects.get(pk=green.id).worker_pids == [PID + 2, PID + 3]

    page = workers.page()
    views = {view.cluster.name: view for view in page.clusters}
    assert views["blue"].running == [] and page.orphans == []
    assert [j.pk for j in views["green"].running] == [job.pk]
    assert job.lease_owner == f"{HOST}:{PID}"  # as every container of the image says
    [busy] = [w for w in views["green"].workers if w.job is not None]
    assert busy.worker_id == str(claimed.attempt.worker_id)


def test_the_workers_page_shows_each_workers_id():
    blue = registration("blue")
    Cluster.objects.filter(pk=blue.id).update(worker_pids=[PID])
    worker_id = uuid4()
    claim_as(enqueue("tests.add", 1, 2), worker_id, blue.id)
    client = Client()
    client.force_login(superuser())
    page = client.get(reverse("dashboard:workers")).content.decode()
    assert f"worker id {worker_id}" in page and worker_id.hex[:8] in page
    assert str(blue.id) in page


def test_a_job_of_a_cluster_not_shown_is_an_orphan_whatever_its_host_and_pid():
    registration("blue")
    claim_as(enqueue("tests.add", 1, 2), uuid4(), uuid4())  # a cluster gone long ago
    page = workers.page()
    assert page.clusters[0].running == [] and len(page.orphans) == 1


# --- The cluster's processes, found through psutil -------------------------------------


@pytest.mark.slow  # starts real child processes
def test_the_cluster_finds_its_processes_through_psutil_without_reading_proc(monkeypatch):
    """qcluster signals and lists every process under its sentinel; it must not walk
    /proc, which macOS has not."""
    real_iterdir, real_read_text = Path.iterdir, Path.read_text

    def guard(real):
        def refuse_proc(path, *args, **kwargs):
            if str(path).startswith("/proc"):
                raise AssertionError(f"read {path}")
            return real(path, *args, **kwargs)
        return refuse_proc

    monkeypatch.setattr(Path, "iterdir", guard(real_iterdir))
    monkeypatch.setattr(Path, "read_text", guard(real_read_text))
    # A child that starts a grandchild, as the sentinel starts workers.
    child = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print(p.pid, flush=True); time.sleep(30)")], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(child.stdout.readline())
        found = qcluster._descendants(child.pid)
        assert found == [grandchild]
        assert {child.pid, grandchild} <= set(qcluster._descendants(psutil.Process().pid))
    finally:
        for proc in psutil.Process(child.pid).children(recursive=True):
            proc.kill()
        child.kill()
        child.wait()
        child.stdout.close()  # the pipe too: not left to the GC (a ResourceWarning)
    assert qcluster._descendants(child.pid) == []  # gone: nothing to signal, no error
