"""The jobs app's endpoints, without the dashboard: `path("", include("jobs.urls"))`.

- `healthz`: GET /healthz, open to load balancers; counts and ages only.
- `metrics`: GET /metrics, staff or `JOBS_METRICS_TOKEN`.
- `jobs_api:job-status`: GET /api/jobs/<id>/status/, the job's owner or staff
  with jobs.view_job (`jobs.api_urls`; mount that alone for another prefix).

The names are the ones the permission table (`jobs.ops.access.ROUTES`) and
the dashboard's links use.
"""

from django.urls import include, path

from jobs.http.monitoring import healthz, metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),  # open to load balancers; counts only
    path("metrics", metrics, name="metrics"),  # staff, or JOBS_METRICS_TOKEN
    path("api/", include("jobs.api_urls")),  # the status API, namespace jobs_api
]
