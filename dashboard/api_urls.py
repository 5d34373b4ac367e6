"""The JSON status API, as the dashboard used to mount it: now `jobs.api_urls`.

Kept so that `path("api/", include("dashboard.api_urls"))` in a project's
URLconf (the README's) goes on serving `jobs_api:job-status`; the view is the
jobs app's own (`jobs.http.status`). Include this or `jobs.api_urls` (or
`jobs.urls`, which includes it), not two of them.
"""

from jobs.api_urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
