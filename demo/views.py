"""The README's example: a view starts a job and answers 202 Accepted at once."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from demo.tasks import build_report
from jobs import enqueue


@login_required
@require_POST
def start_report(request, report_id: int):
    job = enqueue(build_report, report_id, rows=500, enqueued_by=request.user)
    # The caller polls this URL (readable by the job's owner and staff only).
    status_url = reverse("jobs_api:job-status", args=[job.pk])
    response = JsonResponse(
        {"job_id": str(job.pk), "status": job.status, "status_url": status_url}, status=202
    )
    response["Location"] = status_url
    return response
