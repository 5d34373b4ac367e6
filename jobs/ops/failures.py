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
GROUPS_SHOWN = 50


@dataclass
class FailureGroup:
    task_name: str
    cause: str
    count: int
    dead: int
    retrying: int
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

    Four queries however many groups: the grouping (with its dead / retrying
    split), then the samples, their last failed attempts and their failed
    steps, one query each.
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
    if found and samples:
        _attach_samples(found)
    return found


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
