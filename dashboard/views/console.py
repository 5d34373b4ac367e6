"""The dashboard's console pages: overview, queues, workers, failures, tasks, activity.

Figures and background operations rather than single jobs. Thin views:
check access (`dashboard.access.guarded`), ask `dashboard.queries` or
`jobs.ops`, and answer with the page or its fragment
(`dashboard.views.rendering`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from dashboard import queries
from dashboard.access import guarded
from dashboard.forms import QueuePauseForm
from dashboard.views.rendering import (
    add_message,
    flash,
    is_fragment,
    page_or_fragment,
    setting,
    stop_polling,
)
from jobs.core.clusters import MISSED_REFRESHES
from jobs.core.registry import check_task_name
from jobs.exceptions import InvalidTaskName
from jobs.models import OperationStatus, OperatorAction
from jobs.ops import audit, bulk, failures, operations, task_figures
from jobs.ops import queues as op_queues
from jobs.ops import workers as op_workers


def _overview_poll() -> float:
    return setting("DASHBOARD_OVERVIEW_POLL_SECONDS", 5)


@require_GET
@guarded
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    """The front page: counts, running jobs, queues, schedules; polled."""
    context = {**queries.overview(), "poll_seconds": _overview_poll()}
    return page_or_fragment(request, "dashboard/overview.html",
                            "dashboard/partials/overview_body.html", context)


# --- Queues and workers ----------------------------------------------------------------


@require_GET
@guarded
@vary_on_headers("HX-Request")
def queue_list(request: HttpRequest) -> HttpResponse:
    """Every queue: waiting jobs, whether a cluster serves it, paused or not; polled."""
    return _queues(request)


def _queues(request: HttpRequest, said: dict[str, str] | None = None,
            status: int = 200) -> HttpResponse:
    context = {"rows": op_queues.overview(), "now": timezone.now(),
               "can_pause": op_queues.can_pause(request.user),
               "poll_seconds": _overview_poll()}
    if said:
        context.update(flash=said, flash_oob=True)
    return page_or_fragment(request, "dashboard/queues.html", "dashboard/partials/queues.html",
                            context, status=status, answer=bool(said))


@require_POST
@guarded
def queue_pause(request: HttpRequest) -> HttpResponse:
    """Pause or resume one queue (jobs.pause_queue); the outcome is said, not assumed."""
    if not op_queues.can_pause(request.user):
        raise PermissionDenied("Pausing queues needs the permission jobs.pause_queue.")
    form = QueuePauseForm(request.POST)
    if not form.is_valid():
        return _queues(request, flash(form.problem(), "error"), status=400)
    queue, pause = form.cleaned_data["queue"], form.cleaned_data["do"] == "pause"
    if pause:
        changed = op_queues.pause(request.user, queue)
        text = (f"Paused queue “{queue}”: clusters stop claiming its jobs now; running jobs "
                "finish." if changed else f"Queue “{queue}” was already paused.")
    else:
        changed = op_queues.resume(request.user, queue)
        text = (f"Resumed queue “{queue}”." if changed
                else f"Queue “{queue}” was not paused.")
    said = flash(text, "success" if changed else "warning")
    if request.htmx:
        return _queues(request, said)
    add_message(request, said)
    return redirect("dashboard:queues")


@require_GET
@guarded
@vary_on_headers("HX-Request")
def worker_list(request: HttpRequest) -> HttpResponse:
    """The clusters of the registry and what each worker runs; polled."""
    context = {"page": op_workers.page(), "missed": MISSED_REFRESHES,
               "poll_seconds": _overview_poll()}
    return page_or_fragment(request, "dashboard/workers.html", "dashboard/partials/workers.html",
                            context)


# --- Failures and tasks ----------------------------------------------------------------


@require_GET
@guarded
def failure_list(request: HttpRequest) -> HttpResponse:
    """Dead jobs grouped by cause, with the group actions the user may take."""
    return render(request, "dashboard/failures.html", {
        "groups": failures.groups(),
        "group_actions": [a for a in operations.available(request.user)
                          if a.name in ("requeue", "resolve")],
    })


@require_GET
@guarded
def task_list(request: HttpRequest, task_name: str | None = None) -> HttpResponse:
    """Per-task figures for the last hour and day, for every task or the one named."""
    if task_name is not None:
        try:
            check_task_name(task_name, "the task in the URL")  # the registry's one rule
        except InvalidTaskName as exc:
            raise BadRequest(str(exc)) from None
    windows = [{"key": key, "label": label,
                "rows": task_figures.figures(key, task_name=task_name)}
               for key, label in (("1h", "Last hour"), ("24h", "Last 24 hours"))]
    return render(request, "dashboard/tasks.html", {"windows": windows, "task_name": task_name})


# --- Activity: the operators' actions ----------------------------------------------------


@require_GET
@guarded
@vary_on_headers("HX-Request")
def activity(request: HttpRequest) -> HttpResponse:
    """The recent operator actions, background ones with their progress; polled."""
    rows = [_operation_view(row) for row in audit.recent()]
    context = {"rows": rows, "poll_seconds": _overview_poll()}
    return page_or_fragment(request, "dashboard/activity.html",
                            "dashboard/partials/activity.html", context)


def _operation_view(row: OperatorAction) -> dict[str, Any]:
    stored = row.target.get("filter") if isinstance(row.target, dict) else None
    report = bulk.report(row)  # settles a row whose job ended unseen: read status after
    return {"row": row, "label": operations.label(row.action),
            "target": audit.describe_target(row.target),
            "report": report, "running": row.status == OperationStatus.RUNNING,
            "handled": row.done + row.skipped,
            "filter_query": _filter_query(stored) if stored else ""}


def _filter_query(stored: dict[str, Any]) -> str:
    qd = QueryDict(mutable=True)
    for key in ("status", "queue", "task", "cause", "letter", "q"):
        if stored.get(key):
            qd[key] = stored[key]
    return qd.urlencode()


@require_GET
@guarded
def operation(request: HttpRequest, operation_id: int) -> HttpResponse:
    """A background action's progress and report; polled until it is finished."""
    row = get_object_or_404(OperatorAction, pk=operation_id)
    op = _operation_view(row)
    response = page_or_fragment(request, "dashboard/operation.html",
                                "dashboard/partials/operation.html", {"op": op})
    if is_fragment(request) and not op["running"]:
        stop_polling(response)
    return response
