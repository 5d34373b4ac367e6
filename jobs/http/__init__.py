"""The jobs app's own HTTP endpoints, for a project with or without the dashboard.

`/healthz` and `/metrics` (`jobs.http.monitoring`) and the JSON status API
(`jobs.http.status`), mounted by `jobs.urls` (all three) or `jobs.api_urls`
(the API alone, under a prefix of the project's choosing). They sit above
`jobs.ops` and below the screens (`jobs.admin`, `dashboard`) in the
import-linter layers, so the dashboard may link to them and keep its old
import paths as aliases.
"""

from jobs.http.monitoring import healthz, metrics
from jobs.http.status import job_status

__all__ = ["healthz", "job_status", "metrics"]
