"""The dashboard's views: job pages (`jobs`), console pages (`console`), and how both
answer, the whole page or its HTMX fragment (`rendering`).

`/healthz`, `/metrics` and the JSON status API are the jobs app's own
(`jobs.http`, mounted by `jobs.urls`), so a project has them without the
dashboard; `healthz`, `metrics` and `job_status` stay importable from here
for projects that imported them from `dashboard.views`.
"""

from dashboard.views.console import (
    activity,
    failure_list,
    operation,
    overview,
    queue_list,
    queue_pause,
    task_list,
    worker_list,
)
from dashboard.views.jobs import (
    bulk_start,
    full_value,
    job_action,
    job_detail,
    job_list,
    job_live,
    step_limits,
)
from jobs.http import healthz, job_status, metrics

__all__ = [
    "activity", "bulk_start", "failure_list", "full_value", "healthz", "job_action",
    "job_detail", "job_list", "job_live", "job_status", "metrics", "operation", "overview",
    "queue_list", "queue_pause", "step_limits", "task_list", "worker_list",
]
