"""The JSON status API: the endpoint a project's own frontend polls for a job's state.

Who may read a job is `jobs.ops.access`'s rule (`readable_jobs`); how its
status is worded is `jobs.ops.presentation`'s, the same words every screen
shows. The dashboard is not needed: `jobs.api_urls` mounts it alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import BadRequest
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.models import Job, JobStatus, Step
from jobs.ops import access
from jobs.ops.guards import reject_unstorable_input
from jobs.ops.presentation import job_progress, status_info

ERROR_STATUSES = frozenset({JobStatus.RETRYING, JobStatus.DEAD})


@require_GET
@never_cache
def job_status(request: HttpRequest, job_id: UUID) -> JsonResponse:
    """JSON state of one job for the app's own frontends.

    Only the job's owner (Job.enqueued_by) or staff with jobs.view_job may read
    it (`access.may_read_job`, the table's rule for this route): its result and
    error are job data. Anyone else gets the same 404 as for a job that does not
    exist, so ids cannot be probed; anonymous callers get 401.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Authentication required."}, status=401)
    try:
        reject_unstorable_input(request)  # the guard, answered in JSON
    except BadRequest as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    job = readable_job(request.user, job_id)
    if job is None:
        return JsonResponse({"error": "Not found."}, status=404)
    return JsonResponse(status_payload(job))


def readable_job(user: Any, job_id: UUID) -> Job | None:
    """The job if `user` may read it (`access.may_read_job`): its owner
    (Job.enqueued_by), or staff with jobs.view_job.

    Anyone else gets None, exactly as for a job that does not exist, so the
    API never tells a stranger that a job id is real, and staff without the
    right to read job data do not get its result or error here either.
    """
    return access.readable_jobs(user).filter(pk=job_id).first()


def status_payload(job: Job) -> dict[str, Any]:
    """What the app's own frontends need to show a job's state (two queries).

    It carries the job's result and error: call it only for a job `readable_job`
    returned.
    """
    steps = list(Step.objects.filter(job=job).order_by("position", "id"))
    status = JobStatus(job.status)
    return {
        "id": str(job.pk),
        "status": status.value,
        "status_label": status_info(status)[0],  # the words every screen shows
        "terminal": status.is_terminal,
        "progress": job_progress(steps),
        "steps": [{"name": s.name, "status": s.status} for s in steps],
        "result": job.result if status == JobStatus.SUCCEEDED else None,
        "error": job.last_error if status in ERROR_STATUSES else None,
        "attempts": {"count": job.attempt_count, "max": job.max_attempts},
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        # When a retrying job will be tried again.
        "next_attempt_at": _iso(job.run_after) if status == JobStatus.RETRYING else None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
