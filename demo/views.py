"""The demo's pages: a front page that says where everything is, and the README's
example view that starts a job and answers 202 Accepted at once."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from demo.tasks import build_report
from jobs import enqueue


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """`/`: a newcomer's first page, linking the dashboard, the admin, the health and
    metrics endpoints, with the hints the README gives. Open to anyone: it shows no job."""
    return render(request, "demo/index.html", {
        "dashboard": reverse("dashboard:overview"),
        "jobs": reverse("admin:jobs_job_changelist"),
        "admin": reverse("admin:index"),
        "healthz": reverse("healthz"),
        "metrics": reverse("metrics"),
        "status_api": reverse("jobs_api:job-status",
                              args=["00000000-0000-0000-0000-000000000000"]).replace(
            "00000000-0000-0000-0000-000000000000", "<id>"),
        "start_report": reverse("demo:start-report", args=[42]),
    })


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
