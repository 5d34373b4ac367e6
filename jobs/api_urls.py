"""The JSON status API's URLconf, under a prefix of the project's choosing.

`path("api/", include("jobs.api_urls"))` serves GET api/jobs/<id>/status/ as
`jobs_api:job-status`; `jobs.urls` includes it at api/ beside /healthz and
/metrics. (`dashboard.api_urls` is this same URLconf, kept for projects that
mounted it from the dashboard; include one of them, not both.)
"""

from django.urls import path

from jobs.http.status import job_status

app_name = "jobs_api"
urlpatterns = [
    path("jobs/<uuid:job_id>/status/", job_status, name="job-status"),
]
