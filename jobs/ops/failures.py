"""What is failing and why: dead and retrying jobs grouped by task and cause.

A cause is the error class and its message with what varies per job taken
out (jobs.core.causes), stored on the job when its failure is recorded; so
grouping is one scan of the partial index job_failure_idx, which holds only
dead and retrying jobs, however many succeeded before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Max, Min, Q

from jobs.models import Attempt, AttemptStatus, Job, JobStatus, Step, StepStatus

FAILING = (JobStatus.DEAD, JobStatus.RETRYING)
# Attempts that ended in a failure (not a shutdown's release, not a cancel).
FAILED_ATTEMPTS = (AttemptStatus.FAILED, AttemptStatus.TIMED_OUT, AttemptStatus.LOST)
GROUPS_SHOWN = 50


@dataclass
class FailureGroup:
    task_name: str
    cause: str
    count: int
    dead: int
    retrying: int
    # The group's earliest recorded failure: its jobs' first failed attempt with the
    # cause's error class, through requeues (a requeue clears the job's own failure).
    first_seen: datetime | None
    last_seen: datetime | None
    sample: Job | None = None
    sample_attempt: Attempt | None = None
    failing_step: Step | None = None

    @property
    def filters(self) -> dict[str, str]:
        """The job-list filter that holds exactly this group's jobs."""
        return {"task": self.task_name, "cause": self.cause}

    @property
    def querystring(self) -> str:
        return urlencode(self.filters)

    @property
    def dead_querystring(self) -> str:
        return urlencode({**self.filters, "status": JobStatus.DEAD})


def groups(limit: int = GROUPS_SHOWN, *, samples: bool = True) -> list[FailureGroup]:
    """The biggest failure groups first (ties: the most recent), with a sample each.

    Five queries however many groups: the grouping (with its dead / retrying
    split), the first failures, then the samples, their last failed attempts and
    their failed steps, one query each.
    """
    rows = (
        Job.objects.filter(status__in=FAILING).order_by()
        .values("task_name", "failure_cause")
        .annotate(n=Count("pk"), dead=Count("pk", filter=Q(status=JobStatus.DEAD)),
                  first=Min("last_failed_at"), last=Max("last_failed_at"))
        .order_by("-n", "-last")[:limit]
    )
    found = [FailureGroup(task_name=r["task_name"], cause=r["failure_cause"], count=r["n"],
                          dead=r["dead"], retrying=r["n"] - r["dead"], first_seen=r["first"],
                          last_seen=r["last"])
             for r in rows]
    if found:
        _attach_first_failures(found)
    if found and samples:
        _attach_samples(found)
    return found


def _attach_first_failures(found: list[FailureGroup]) -> None:
    """When each group was first seen: the earliest failed attempt of its jobs that
    raised the cause's error class, in one grouped query over their attempts.

    A job's own `last_failed_at` is its latest failure, and a requeue clears it (a
    fresh cycle), so the jobs' rows alone would move "first seen" to the latest
    re-failure; the attempts are the history a requeue keeps. Attempts store the
    class and message, not the cause: a job that failed earlier with the same class
    but another message counts as seen then too (the class is the cause's prefix).
    """
    match = Q()
    for g in found:
        match |= Q(job__task_name=g.task_name, job__failure_cause=g.cause,
                   error_class=g.cause.partition(": ")[0])
    rows = (Attempt.objects.filter(match, job__status__in=FAILING, status__in=FAILED_ATTEMPTS)
            .order_by().values("job__task_name", "job__failure_cause")
            .annotate(first=Min("finished_at")))
    first = {(r["job__task_name"], r["job__failure_cause"]): r["first"] for r in rows}
    for g in found:
        earliest = first.get((g.task_name, g.cause))
        if earliest is not None and (g.first_seen is None or earliest < g.first_seen):
            g.first_seen = earliest


def _attach_samples(found: list[FailureGroup]) -> None:
    """Each group's most recent failure, its last failed attempt and failed step."""
    latest = Q()
    for g in found:
        latest |= Q(task_name=g.task_name, failure_cause=g.cause, last_failed_at=g.last_seen)
    samples: dict[tuple[str, str], Job] = {}
    for job in Job.objects.filter(latest, status__in=FAILING).only(
            "id", "task_name", "status", "last_error", "last_attempt_number", "queue",
            "created_at", "failure_cause", "last_failed_at"):
        samples.setdefault((job.task_name, job.failure_cause), job)
    ids = [job.pk for job in samples.values()]
    attempts: dict[Any, Attempt] = {}
    for a in (Attempt.objects.filter(job_id__in=ids)
              .exclude(status__in=[AttemptStatus.RUNNING, AttemptStatus.SUCCEEDED])
              .order_by("job_id", "-number")):
        attempts.setdefault(a.job_id, a)
    steps: dict[Any, Step] = {}
    for s in (Step.objects.filter(job_id__in=ids, status=StepStatus.FAILED)
              .order_by("job_id", "-finished_at")):
        steps.setdefault(s.job_id, s)
    for group in found:
        group.sample = samples.get((group.task_name, group.cause))
        if group.sample is not None:
            group.sample_attempt = attempts.get(group.sample.pk)
            group.failing_step = steps.get(group.sample.pk)
