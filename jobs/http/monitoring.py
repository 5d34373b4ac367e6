"""`/healthz` for load balancers and `/metrics` for Prometheus.

Thin views over `jobs.ops.health` and `jobs.ops.metrics`: what is measured
and when it is unhealthy is decided there; here only who may read it and how
it is answered (docs/operations.md).
"""

from __future__ import annotations

import hmac
from importlib.util import find_spec

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.log import log_response
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs import conf
from jobs.ops import access, health


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Health for load balancers and monitors: 200 when healthy, 503 when not.

    Open to anyone, so it says only counts and ages, never a job, task or error.
    """
    report = health.check()
    response = JsonResponse(report, status=200 if report["healthy"] else 503)
    if not report["healthy"]:
        # Monitors poll this every few seconds: an unhealthy answer is a warning in
        # the log, not an ERROR that mails ADMINS once per poll.
        log_response("Unhealthy: %s", request.path, response=response, request=request,
                     level="warning")
    return response


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (docs/operations.md): for staff, or a scraper sending
    `Authorization: Bearer <JOBS['METRICS_TOKEN']>`; 403 for anyone else."""
    token = conf.get().metrics_token
    sent = request.headers.get("Authorization", "")
    by_token = bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if not by_token and not access.METRICS.allows(request.user):
        return HttpResponse("Forbidden: staff or the metrics token only.\n", status=403,
                            content_type="text/plain")
    if find_spec("prometheus_client") is None:
        return HttpResponse("Metrics need prometheus-client (pip install truthful-jobs[metrics])."
                            "\n", status=501, content_type="text/plain")
    from jobs.ops import metrics as exposition  # optional dependency, present (checked above)

    return HttpResponse(exposition.scrape(),
                        content_type="text/plain; version=0.0.4; charset=utf-8")
