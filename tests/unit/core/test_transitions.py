import itertools
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs.core import transitions as tr
from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus, Step, StepStatus
from tests.factories import DeadLetterFactory, JobFactory, StaffFactory
from tests.racing import race

pytestmark = pytest.mark.django_db
S = JobStatus

# The documented state machine (docs/architecture.md), written out independently of
# jobs.core.transitions: operation -> (statuses it may start from, status it leaves).
EXPECTED_OPERATIONS = {
    "claim": ({S.QUEUED, S.RETRYING}, S.RUNNING),
    "succeed": ({S.RUNNING}, S.SUCCEEDED),
    "retry": ({S.RUNNING}, S.RETRYING),
    "bury": ({S.RUNNING}, S.DEAD),
    "stop_cancelled": ({S.RUNNING}, S.CANCELLED),
    "release": ({S.RUNNING}, S.QUEUED),
    "cancel": ({S.QUEUED, S.RETRYING}, S.CANCELLED),
    "requeue": ({S.DEAD, S.CANCELLED}, S.QUEUED),
    "resume": ({S.DEAD, S.CANCELLED, S.RETRYING}, S.QUEUED),
}
EXPECTED_MACHINE = {(source, target) for sources, target in EXPECTED_OPERATIONS.values()
                    for source in sources}


def claim(job):
    return tr.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)


def running_job(**kw):
    """A job claimed the real way, so the attempt guard matches."""
    job = JobFactory(**kw)
    return claim(job)


def error():
    return tr.ErrorInfo("RuntimeError", "boom", "Traceback ...")


def test_the_state_machine_is_exactly_the_documented_one():
    assert set(tr.ALLOWED) == EXPECTED_MACHINE
    assert {t.name for t in tr.TRANSITIONS} == set(EXPECTED_OPERATIONS)


# One operation per transition, driven from a job that is in `source`.
def do_claim(job):
    return claim(job) is not None


def _as_owned(job):
    """Pretend the current attempt owns the job, whatever its status."""
    job.last_attempt_number = job.attempt_count = 1
    job.save(update_fields=["last_attempt_number", "attempt_count"])
    attempt = Attempt.objects.create(job=job, number=1)
    return tr.Claimed(job=job, attempt=attempt)


def do_succeed(job):
    try:
        tr.succeed(_as_owned(job), 1)
        return True
    except tr.LostOwnership:
        return False


def do_retry(job):
    try:
        tr.fail(_as_owned(job), error(), retry_at=timezone.now())
        return True
    except tr.LostOwnership:
        return False


def do_bury(job):
    try:
        tr.fail(_as_owned(job), error(), retry_at=None)
        return True
    except tr.LostOwnership:
        return False


def do_stop_cancelled(job):
    try:
        tr.stop_cancelled(_as_owned(job))
        return True
    except tr.LostOwnership:
        return False


def do_release(job):
    try:
        tr.release(_as_owned(job))
        return True
    except tr.LostOwnership:
        return False


def do_cancel(job):
    return bool(tr.cancel([job.pk]).done)


def do_requeue(job):
    return bool(tr.requeue([job.pk]).done)


def do_resume(job):
    return bool(tr.resume([job.pk]).done)


OPERATIONS = {
    "claim": do_claim,
    "succeed": do_succeed,
    "retry": do_retry,
    "bury": do_bury,
    "stop_cancelled": do_stop_cancelled,
    "release": do_release,
    "cancel": do_cancel,
    "requeue": do_requeue,
    "resume": do_resume,
}


@pytest.mark.parametrize(("op", "source"), list(itertools.product(EXPECTED_OPERATIONS, list(S))))
def test_every_operation_from_every_status(op, source):
    """Each operation moves exactly the documented statuses, and refuses the rest unchanged."""
    sources, target = EXPECTED_OPERATIONS[op]
    job = JobFactory(status=source)
    allowed = source in sources
    assert OPERATIONS[op](job) is allowed
    job.refresh_from_db()
    assert job.status == (target if allowed else source)


class TestClaim:
    def test_claim_opens_an_attempt_and_a_lease(self):
        job = JobFactory()
        c = tr.claim(job.pk, worker_host="web-1", worker_pid=99, lease_seconds=30)
        job.refresh_from_db()
        assert job.status == S.RUNNING and job.attempt_count == 1
        assert job.lease_owner == "web-1:99" and job.lease_expires_at > timezone.now()
        assert c.attempt.number == 1 and c.attempt.status == AttemptStatus.RUNNING
        assert (c.attempt.worker_host, c.attempt.worker_pid) == ("web-1", 99)

    def test_second_claim_of_the_same_id_loses(self):
        job = JobFactory()
        assert claim(job) is not None
        assert claim(job) is None
        assert Attempt.objects.filter(job=job).count() == 1

    def test_a_job_is_not_claimed_before_run_after(self):
        job = JobFactory(status=S.RETRYING, run_after=timezone.now() + timedelta(seconds=60))
        assert claim(job) is None
        job.refresh_from_db()
        assert job.status == S.RETRYING


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_the_same_jobs_each_job_goes_to_exactly_one(on_postgres):
    """The one-statement claim on PostgreSQL (a short transaction elsewhere): two
    workers, each on its own connection, claim the same 150 jobs at the same moment."""
    jobs = [JobFactory() for _ in range(150)]

    def step(i: int, r: int) -> str | None:
        got = tr.claim(jobs[r].pk, worker_host=f"w{i}", worker_pid=i, lease_seconds=30)
        return str(got.job.pk) if got else None

    results = race(step, rounds=len(jobs))
    won = {i: [pk for pk in results[i] if pk] for i in results}
    assert sorted(won[0] + won[1]) == sorted(str(j.pk) for j in jobs)  # each once, none lost
    assert won[0] and won[1]  # both really raced
    for job in Job.objects.all():
        assert job.status == S.RUNNING and job.attempt_count == 1
    # One attempt per job, written by the worker whose claim won.
    owners = dict(Attempt.objects.values_list("job_id", "worker_host"))
    assert len(owners) == 150 and Attempt.objects.count() == 150
    assert {str(k) for k, v in owners.items() if v == "w0"} == set(won[0])


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_claims_asynchronous_commit_never_reaches_a_callers_writes(on_postgres):
    """Only a claim in its own (autocommit) transaction skips the wait for the WAL
    flush; the session, and a caller's transaction around a claim, keep their setting."""
    assert on_postgres

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            return cursor.fetchone()[0]

    assert claim(JobFactory()) is not None
    assert setting() == "on"
    with transaction.atomic():
        assert claim(JobFactory()) is not None
        assert setting() == "on"


class TestOwnership:
    def test_a_stale_attempt_cannot_finish_a_job_that_moved_on(self):
        c = running_job()
        # Another actor released and re-claimed it meanwhile (a reaped lease, say).
        Job.objects.filter(pk=c.job.pk).update(status=S.QUEUED)
        newer = claim(c.job)
        with pytest.raises(tr.LostOwnership):
            tr.succeed(c, "stale")
        tr.succeed(newer, "fresh")
        c.job.refresh_from_db()
        assert c.job.result == "fresh"
        assert Attempt.objects.get(pk=c.attempt.pk).status == AttemptStatus.RUNNING

    def test_fail_to_dead_writes_a_dead_letter(self):
        c = running_job(max_attempts=1)
        assert tr.fail(c, error(), retry_at=None) == S.DEAD
        dl = DeadLetter.objects.get(job=c.job)
        assert (dl.error_class, dl.error_message, dl.attempts) == ("RuntimeError", "boom", 1)
        c.job.refresh_from_db()
        assert c.job.last_error == "RuntimeError: boom" and c.job.finished_at is not None
        assert c.job.lease_owner == "" and c.job.lease_expires_at is None

    def test_fail_to_retry_sets_run_after_and_closes_the_attempt(self):
        c = running_job()
        when = timezone.now() + timedelta(seconds=5)
        assert tr.fail(c, error(), retry_at=when) == S.RETRYING
        c.job.refresh_from_db()
        a = Attempt.objects.get(pk=c.attempt.pk)
        # The 5 s backoff, counted from the database's clock (here: the same clock).
        assert abs(c.job.run_after - when) < timedelta(seconds=1)
        assert a.retry_at == c.job.run_after and a.finished_at == c.job.last_failed_at
        assert a.status == AttemptStatus.FAILED and a.traceback == "Traceback ..."
        assert a.finished_at is not None and a.duration is not None
        assert not DeadLetter.objects.exists()


class TestOperatorActions:
    def test_cancel_mixed_selection(self):
        queued, retrying = JobFactory(), JobFactory(status=S.RETRYING)
        running = running_job().job
        done = JobFactory(status=S.SUCCEEDED)
        result = tr.cancel([queued.pk, retrying.pk, running.pk, done.pk])
        assert set(result.done) == {queued.pk, retrying.pk}
        assert result.requested == [running.pk]
        assert result.skipped == [done.pk]
        running.refresh_from_db()
        assert running.status == S.RUNNING and running.cancel_requested_at is not None

    def test_requeue_starts_a_new_cycle_keeps_history_and_resolves_the_dead_letter(self):
        c = running_job(max_attempts=1)
        tr.fail(c, error(), retry_at=None)
        user = StaffFactory()
        other = JobFactory(status=S.RUNNING)
        result = tr.requeue([c.job.pk, other.pk], by=user, note="fixed the feed")
        assert result.done == [c.job.pk] and result.skipped == [other.pk]
        c.job.refresh_from_db()
        assert c.job.status == S.QUEUED and c.job.attempt_count == 0
        assert c.job.last_attempt_number == 1  # history kept; next attempt is number 2
        dl = DeadLetter.objects.get(job=c.job)
        assert dl.resolved_by == user and dl.note == "fixed the feed"
        assert claim(c.job).attempt.number == 2

    def test_requeue_in_batches(self, monkeypatch):
        monkeypatch.setattr(tr, "BULK_BATCH", 3)
        jobs = [JobFactory(status=S.DEAD) for _ in range(7)] + [JobFactory()]
        result = tr.requeue([j.pk for j in jobs])
        assert len(result.done) == 7 and len(result.skipped) == 1
        assert Job.objects.filter(status=S.QUEUED).count() == 8

    def test_resolve_dead_letters_only_once(self):
        dl = DeadLetterFactory()
        user = StaffFactory()
        assert tr.resolve_dead_letters([dl.pk], by=user, note="known outage") == 1
        assert tr.resolve_dead_letters([dl.pk], by=user, note="again") == 0
        dl.refresh_from_db()
        assert dl.note == "known outage" and dl.resolved_by == user
        dl.job.refresh_from_db()
        assert dl.job.status == S.DEAD


class TestStepsAreFencedByTheAttempt:
    """A reaped attempt (a frozen worker that wakes up) can change no step any more."""

    def make(self):
        old = running_job(max_attempts=3)
        step = Step.objects.create(job=old.job, position=1, name="load")
        tr.start_step(old.job.pk, old.attempt.number, step.pk)
        return old, step

    def reap_and_reclaim(self, old):
        tr.fail(old, error(), retry_at=timezone.now() - timedelta(seconds=1))
        new = claim(Job.objects.get(pk=old.job.pk))
        assert new is not None and new.attempt.number == old.attempt.number + 1
        return new

    def test_the_reaper_closes_the_running_step_of_the_attempt_it_reaps(self):
        old, step = self.make()
        tr.fail(old, error(), retry_at=timezone.now())
        step.refresh_from_db()
        assert step.status == StepStatus.FAILED and step.error_class == "RuntimeError"
        assert Attempt.objects.get(pk=old.attempt.pk).step_id == step.pk

    def test_a_stale_attempt_cannot_fail_checkpoint_or_report_on_the_new_attempts_step(self):
        old, step = self.make()
        new = self.reap_and_reclaim(old)
        tr.start_step(new.job.pk, new.attempt.number, step.pk)

        assert tr.fail_step(old.attempt.number, step.pk, error()) is False
        assert tr.step_progress(old.attempt.number, step.pk, 5, 10, "stale") is False
        with pytest.raises(tr.LostOwnership):
            tr.checkpoint_step(old.job.pk, old.attempt.number, step.pk, {"stale": True})
        step.refresh_from_db()
        assert (step.status, step.attempt_number, step.attempts) == (
            StepStatus.RUNNING, new.attempt.number, 2)
        assert step.progress_current is None and step.result is None

        # The owner's own writes still land.
        assert tr.step_progress(new.attempt.number, step.pk, 5, 10, "half") is True
        tr.checkpoint_step(new.job.pk, new.attempt.number, step.pk, {"rows": 10})
        step.refresh_from_db()
        assert (step.status, step.result, step.progress_current) == (
            StepStatus.SUCCEEDED, {"rows": 10}, 5)

    def test_a_stale_attempt_cannot_start_a_step(self):
        old, step = self.make()
        self.reap_and_reclaim(old)
        other = Step.objects.create(job=old.job, position=2, name="notify")
        with pytest.raises(tr.LostOwnership):
            tr.start_step(old.job.pk, old.attempt.number, other.pk)
        other.refresh_from_db()
        assert (other.status, other.attempts, other.attempt_number) == (StepStatus.PENDING, 0, None)

    def test_a_succeeded_step_is_never_started_again(self):
        owner, step = self.make()
        tr.checkpoint_step(owner.job.pk, owner.attempt.number, step.pk, 1)
        with pytest.raises(tr.LostOwnership):
            tr.start_step(owner.job.pk, owner.attempt.number, step.pk)
        step.refresh_from_db()
        assert (step.status, step.attempts) == (StepStatus.SUCCEEDED, 1)

    def test_release_puts_the_interrupted_step_back_to_pending(self):
        owner, step = self.make()
        tr.release(owner)
        step.refresh_from_db()
        assert (step.status, step.started_at) == (StepStatus.PENDING, None)
