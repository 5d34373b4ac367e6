"""`{% job_stats_panel %}`: the state of the system at the top of the admin home.

A template tag rather than a custom AdminSite: the stock `admin.site` keeps
working for every app, and only the pages that include the panel pay for
its queries (all answered from indexes, see jobs.stats).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from jobs.models import JobStatus
from jobs.ops import stats
from jobs.ops.presentation import duration_text, status_dot

register = template.Library()


@register.inclusion_tag("admin/jobs/_stats.html", takes_context=True)
def job_stats_panel(context: template.Context) -> dict[str, Any]:
    """Counts per status (each linking to the filtered list), the oldest queued job's
    wait and the unresolved dead letters — for users who may view jobs."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("jobs.view_job"):
        return {"show": False}
    jobs_url = reverse("admin:jobs_job_changelist")
    counts = stats.status_counts()
    oldest = stats.oldest_queued_age()
    return {
        "show": True,
        "statuses": [
            {"dot": status_dot(status), "count": counts[status.value],
             "url": f"{jobs_url}?status__exact={status.value}"}
            for status in JobStatus
        ],
        "total": sum(counts.values()),
        "jobs_url": jobs_url,
        "oldest_queued": duration_text(oldest) if oldest is not None else None,
        "unresolved": stats.unresolved_dead_letters(),
        "dead_letters_url": reverse("admin:jobs_deadletter_changelist") + "?resolved=no",
        "can_view_dead_letters": user.has_perm("jobs.view_deadletter"),
    }
