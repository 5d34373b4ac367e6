"""jobs.ops.step_runs: a step's time, progress and attempts, said once and the same everywhere."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs import enqueue
from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import Job, Step, StepStatus
from jobs.ops.step_runs import progress_text, step_runs, step_time
from tests.factories import StaffFactory

NOW = timezone.now()


@pytest.mark.parametrize(("current", "total", "message", "shown"), [
    (700, 1200, "row 700", "700/1200 row 700"),
    (8000, 40000, "documents 8000/40000", "documents 8000/40000"),  # said once, not twice
    (8000, 40000, "documents 8000 / 40000", "documents 8000 / 40000"),
    (800, 40000, "documents 8000/40000", "800/40000 documents 8000/40000"),  # other figures
    (None, 10, "", "0/10"),
    (5, None, "warming up", "warming up"),
    (5, None, "", ""),
])
def test_progress_says_its_figures_once(current, total, message, shown):
    assert progress_text(current, total, message) == shown


@pytest.mark.parametrize(("status", "started", "finished", "shown"), [
    (StepStatus.PENDING, None, None, "not started"),
    (StepStatus.RUNNING, NOW - timedelta(seconds=12), None, "12 s so far"),
    (StepStatus.SUCCEEDED, NOW - timedelta(seconds=10), NOW - timedelta(seconds=5.8), "4.2 s"),
    (StepStatus.FAILED, NOW - timedelta(seconds=3), NOW - timedelta(seconds=1), "2.0 s"),
])
def test_a_step_s_time_is_never_a_bare_dash(status, started, finished, shown):
    step = Step(status=status, started_at=started, finished_at=finished)
    assert step_time(step, NOW) == shown


@pytest.fixture
def running_rebuild(db):
    """demo.rebuild_index in its second attempt: "scan" done in attempt 1, "tokenize"
    failed in attempt 1 and is running again in attempt 2, "index" and "swap" pending."""
    job = enqueue("demo.rebuild_index", "products")
    steps = {s.name: s for s in Step.objects.filter(job=job)}
    first = transitions.claim(job.pk, worker_host="w1", worker_pid=1, lease_seconds=60)
    transitions.start_step(job.pk, 1, steps["scan"].pk)
    transitions.checkpoint_step(job.pk, 1, steps["scan"].pk, {"documents": 40000})
    transitions.start_step(job.pk, 1, steps["tokenize"].pk)
    error = ErrorInfo("ConnectionError", "tokenizer went away", "Traceback ...")
    transitions.fail_step(1, steps["tokenize"].pk, error)
    transitions.fail(first, error, retry_at=timezone.now(), step_id=steps["tokenize"].pk)
    transitions.claim(job.pk, worker_host="w2", worker_pid=2, lease_seconds=60,
                      now=Job.objects.get(pk=job.pk).run_after)
    transitions.start_step(job.pk, 2, steps["tokenize"].pk)
    transitions.step_progress(2, steps["tokenize"].pk, 8000, 40000, "documents 8000/40000")
    return job


def test_the_running_attempt_is_listed_in_its_step_with_the_step_s_own_times(running_rebuild):
    steps = {s.name: s for s in Step.objects.filter(job=running_rebuild)}
    tokenize = steps["tokenize"]
    attempts = list(running_rebuild.attempts.order_by("-number"))
    now = tokenize.started_at + timedelta(seconds=7)
    latest, earlier = step_runs(tokenize, attempts, now)
    assert (latest.attempt.number, latest.status, latest.kind) == (2, "running", "step")
    # The row of the run the step records and the step's heading: one source.
    assert latest.started_at == tokenize.started_at and latest.took == step_time(tokenize, now)
    assert latest.took == "7.0 s so far" and not latest.ended_here
    assert (earlier.attempt.number, earlier.status, earlier.kind) == (1, "failed", "attempt")
    assert earlier.ended_here and earlier.finished_at == earlier.attempt.finished_at


def test_the_job_page_places_every_attempt_and_says_pending_and_progress_plainly(
        running_rebuild, client):
    client.force_login(StaffFactory(username="ops", is_superuser=True))
    page = client.get(reverse("dashboard:job", args=[running_rebuild.pk])).content.decode()
    detail = client.get(reverse("dashboard:job", args=[running_rebuild.pk])).context["d"]
    by_name = {v.step.name: [a.number for a in v.attempts] for v in detail.steps}
    assert by_name == {"scan": [1], "tokenize": [2, 1], "index": [], "swap": []}
    assert detail.other_attempts == []
    assert "outside any step" not in page and "Current attempt" not in page
    assert page.count("documents 8000/40000") == 1 and "8000/40000 documents" not in page
    times = {v.step.name: v.time for v in detail.steps}
    assert times["index"] == times["swap"] == "not started"
    assert times["tokenize"].endswith(" so far")
    assert page.count('<span class="step-meta">not started') == 2


def test_an_attempt_running_before_its_first_step_is_the_current_attempt(db, client):
    """Claimed, its code not yet at ctx.step(): in no step, and not a leftover either."""
    job = enqueue("demo.rebuild_index", "products")
    transitions.claim(job.pk, worker_host="w1", worker_pid=1, lease_seconds=60)
    client.force_login(StaffFactory(username="ops", is_superuser=True))
    response = client.get(reverse("dashboard:job", args=[job.pk]))
    detail = response.context["d"]
    assert [a.number for a in detail.running_between_steps] == [1]
    assert detail.ended_outside_steps == []
    page = response.content.decode()
    assert "Current attempt" in page and "outside any step" not in page
