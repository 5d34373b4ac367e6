"""Thin views: check access, validate input, ask dashboard.queries, render.

A page answers an HTMX request with just its fragment (templates/dashboard/
partials/) and a normal request with the whole page, so every URL works with
JavaScript off, as a bookmark, and after the back button.
"""

from __future__ import annotations

import hmac
from importlib.util import find_spec
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.log import log_response
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from dashboard import queries
from dashboard.access import guarded
from dashboard.forms import BulkActionForm, BulkAllForm, JobFilterForm, QueuePauseForm
from jobs import conf
from jobs.core.clusters import MISSED_REFRESHES
from jobs.core.registry import check_task_name, registered_tasks
from jobs.exceptions import InvalidTaskName
from jobs.models import OperationStatus, OperatorAction, Step
from jobs.ops import access, audit, bulk, failures, health, operations, task_figures
from jobs.ops import queues as op_queues
from jobs.ops import workers as op_workers
from jobs.ops.forms import StepLimitsForm
from jobs.ops.guards import reject_unstorable_input
from jobs.ops.values import value_text

# htmx stops polling an element when a response has this status.
HTMX_STOP_POLLING = 286


def _fragment(request: HttpRequest) -> bool:
    """True for an HTMX swap; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


def _flash(text: str, level: str = "success") -> dict[str, str]:
    return {"text": text, "level": level}


# --- Overview ------------------------------------------------------------------------


@require_GET
@guarded
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    context = {**queries.overview(),
               "poll_seconds": _setting("DASHBOARD_OVERVIEW_POLL_SECONDS", 5)}
    template = ("dashboard/partials/overview_body.html" if _fragment(request)
                else "dashboard/overview.html")
    return render(request, template, context)


# --- Job list and bulk actions -------------------------------------------------------


def _list_context(request: HttpRequest, form: JobFilterForm) -> dict[str, Any]:
    actions = queries.actions_for(request.user)
    context: dict[str, Any] = {"form": form, "actions": actions, "all_actions": actions,
                               "filters": form.querystring()}
    if form.is_valid():
        page = queries.job_page(queries.filter_jobs(form.cleaned_data),
                                form.cleaned_data["after"], form.cleaned_data["size"])
        context.update(page=page, next_query=form.querystring(after=page.next_cursor or ""))
    return context


@require_GET
@guarded
@vary_on_headers("HX-Request")
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET)
    context = _list_context(request, form)
    context["task_names"] = sorted(registered_tasks())
    template = ("dashboard/partials/job_list.html" if _fragment(request)
                else "dashboard/job_list.html")
    return render(request, template, context, status=200 if form.is_valid() else 400)


@require_POST
@guarded
def job_action(request: HttpRequest, action: str) -> HttpResponse:
    """Run one of jobs.operations' actions on the selected jobs and say what happened."""
    if action not in operations.ACTIONS:
        raise Http404(f"no action {action!r}")
    chosen = operations.ACTIONS[action]
    if not chosen.allowed(request.user):  # a forged POST for a hidden button
        raise PermissionDenied(f"You may not {action} jobs.")
    form = BulkActionForm(request.POST, action=action)
    if not form.is_valid():
        return _action_refused(request, form)
    data = form.cleaned_data
    if not data["confirmed"]:  # no JavaScript dialog happened: ask on a page
        return render(request, "dashboard/confirm.html",
                      {"action": chosen, "ids": data["ids"], "form": form})
    options = {"note": data["note"].strip()} if action == "resolve" else {}
    report = operations.perform(action, request.user, data["ids"], **options)
    level = "success" if report.result.done or report.result.requested else "warning"
    return _after_action(request, data, _flash(report.message, level))


def _action_refused(request: HttpRequest, form: BulkActionForm) -> HttpResponse:
    errors = " ".join(form.non_field_errors()) or "The request was malformed."
    if request.htmx:
        response = render(request, "dashboard/partials/flash.html",
                          {"flash": _flash(errors, "error"), "flash_oob": True}, status=400)
        response["HX-Reswap"] = "none"  # keep the page; the flash arrives out of band
        return response
    messages.error(request, errors)
    # Back to the list the form came from, rebuilt from its filters: never to a URL
    # the request names (a Referer can point anywhere).
    form = JobFilterForm(QueryDict(form.data.get("filters", "")))
    return redirect(f"{reverse('dashboard:jobs')}?{form.querystring()}")


def _after_action(request: HttpRequest, data: dict[str, Any],
                  flash: dict[str, str]) -> HttpResponse:
    """Re-render what the operator was looking at, with the outcome on top."""
    if data["origin"] == "detail":
        job_id = data["ids"][0]
        if request.htmx:
            return _live(request, job_id, flash=flash)
        messages.add_message(request, _LEVELS[flash["level"]], flash["text"])
        return redirect("dashboard:job", job_id=job_id)
    filters = data["filters"] or ""
    if request.htmx:
        form = JobFilterForm(QueryDict(filters))
        context = {**_list_context(request, form), "flash": flash, "flash_oob": True}
        return render(request, "dashboard/partials/job_list.html", context)
    messages.add_message(request, _LEVELS[flash["level"]], flash["text"])
    return redirect(f"{reverse('dashboard:jobs')}?{filters}")


_LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}


# --- Job detail ----------------------------------------------------------------------


def _detail_context(request: HttpRequest, job_id: UUID, **extra: Any) -> dict[str, Any]:
    detail = queries.job_detail(job_id)
    if detail is None:
        raise Http404("No such job.")
    errors: dict[int, list[str]] = extra.pop("limits_errors", {})
    texts: dict[int, str] = extra.pop("limits_texts", {})
    for view in detail.steps:
        if view.step.pk in errors:
            view.limits_errors = errors[view.step.pk]
            view.limits_text = texts[view.step.pk]
    return {
        "d": detail,
        "job": detail.job,
        "actions": queries.actions_for(request.user, detail.job,
                                       has_open_letter=detail.open_dead_letter is not None),
        "can_edit_limits": operations.can_edit_limits(request.user),
        "poll_seconds": _setting("DASHBOARD_DETAIL_POLL_SECONDS", 2),
        **extra,
    }


@require_GET
@guarded
def job_detail(request: HttpRequest, job_id: UUID) -> HttpResponse:
    return render(request, "dashboard/job_detail.html", _detail_context(request, job_id))


@require_GET
@guarded
def job_live(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """The polled part of the job page; once terminal it renders without a trigger."""
    return _live(request, job_id)


def _live(request: HttpRequest, job_id: UUID, status: int = 200, **extra: Any) -> HttpResponse:
    inline = extra.pop("flash_inline", False)
    context = _detail_context(request, job_id, **extra)
    if extra.get("flash") and not inline:
        context["flash_oob"] = True
    response = render(request, "dashboard/partials/job_live.html", context, status=status)
    if status == 200 and request.htmx and context["d"].terminal:
        response.status_code = HTMX_STOP_POLLING  # belt and braces: htmx stops polling
    return response


@require_POST
@guarded
def step_limits(request: HttpRequest, job_id: UUID, step_id: int) -> HttpResponse:
    """Save an operator's edit of a step's limits (what a resume will run with).

    The admin's form and save path: `forms.StepLimitsForm` reads the
    JSON, `operations.save_step_limits` writes it. The permission is checked
    first, so a user who may not edit gets 403 whatever was posted; a bad value
    is the form's error, with 400.
    """
    if not operations.can_edit_limits(request.user):
        raise PermissionDenied("Editing step limits needs the permission to resume jobs.")
    step = get_object_or_404(Step, pk=step_id, job_id=job_id)
    form = StepLimitsForm(request.POST, instance=step)
    if not form.is_valid():
        errors = [str(e) for e in form.errors["limits"]]
        extra = {"limits_errors": {step.pk: errors},
                 "limits_texts": {step.pk: request.POST.get("limits", "")}}
        if request.htmx:
            return _live(request, job_id, status=400, **extra)
        context = _detail_context(request, job_id, **extra)
        return render(request, "dashboard/job_detail.html", context, status=400)
    operations.save_step_limits(request.user, step, form.cleaned_data["limits"])
    flash = _flash(f"Saved the limits of step “{step.name}”; resume the job to run with them.")
    if request.htmx:
        # Said next to the form, where the operator is looking, not at the page's top.
        return _live(request, job_id, flash=flash, saved_step=step.pk, flash_inline=True)
    messages.success(request, flash["text"])
    return redirect(f"{reverse('dashboard:job', args=[job_id])}#step-{step.pk}")


@require_GET
@guarded
def full_value(request: HttpRequest, kind: str, pk: str, field: str) -> HttpResponse:
    """The whole of a long value a page previews; plain text, so it never runs as markup.

    Every kind is job data: `value_text` refuses users `access.can_read_job_data`
    refuses, as the admin's value view does.
    """
    text = value_text(kind, pk, field, user=request.user)
    if text is None:
        raise Http404("No such value.")
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


# --- Queues, workers, failures, tasks, activity ---------------------------------------


@require_GET
@guarded
@vary_on_headers("HX-Request")
def queue_list(request: HttpRequest) -> HttpResponse:
    return _queues(request)


def _queues(request: HttpRequest, flash: dict[str, str] | None = None,
            status: int = 200) -> HttpResponse:
    context = {"rows": op_queues.overview(), "now": timezone.now(),
               "can_pause": op_queues.can_pause(request.user),
               "poll_seconds": _setting("DASHBOARD_OVERVIEW_POLL_SECONDS", 5)}
    if flash:
        context.update(flash=flash, flash_oob=True)
    template = ("dashboard/partials/queues.html" if _fragment(request) or flash and request.htmx
                else "dashboard/queues.html")
    return render(request, template, context, status=status)


@require_POST
@guarded
def queue_pause(request: HttpRequest) -> HttpResponse:
    """Pause or resume one queue (jobs.pause_queue); the outcome is said, not assumed."""
    if not op_queues.can_pause(request.user):
        raise PermissionDenied("Pausing queues needs the permission jobs.pause_queue.")
    form = QueuePauseForm(request.POST)
    if not form.is_valid():
        return _queues(request, _flash(form.problem(), "error"), status=400)
    queue, pause = form.cleaned_data["queue"], form.cleaned_data["do"] == "pause"
    if pause:
        changed = op_queues.pause(request.user, queue)
        text = (f"Paused queue “{queue}”: clusters stop claiming its jobs now; running jobs "
                "finish." if changed else f"Queue “{queue}” was already paused.")
    else:
        changed = op_queues.resume(request.user, queue)
        text = (f"Resumed queue “{queue}”." if changed
                else f"Queue “{queue}” was not paused.")
    flash = _flash(text, "success" if changed else "warning")
    if request.htmx:
        return _queues(request, flash)
    messages.add_message(request, _LEVELS[flash["level"]], flash["text"])
    return redirect("dashboard:queues")


@require_GET
@guarded
@vary_on_headers("HX-Request")
def worker_list(request: HttpRequest) -> HttpResponse:
    context = {"page": op_workers.page(), "missed": MISSED_REFRESHES,
               "poll_seconds": _setting("DASHBOARD_OVERVIEW_POLL_SECONDS", 5)}
    template = ("dashboard/partials/workers.html" if _fragment(request)
                else "dashboard/workers.html")
    return render(request, template, context)


@require_GET
@guarded
def failure_list(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/failures.html", {
        "groups": failures.groups(),
        "group_actions": [a for a in operations.available(request.user)
                          if a.name in ("requeue", "resolve")],
    })


@require_GET
@guarded
def task_list(request: HttpRequest, task_name: str | None = None) -> HttpResponse:
    if task_name is not None:
        try:
            check_task_name(task_name, "the task in the URL")  # the registry's one rule
        except InvalidTaskName as exc:
            raise BadRequest(str(exc)) from None
    windows = [{"key": key, "label": label,
                "rows": task_figures.figures(key, task_name=task_name)}
               for key, label in (("1h", "Last hour"), ("24h", "Last 24 hours"))]
    return render(request, "dashboard/tasks.html", {"windows": windows, "task_name": task_name})


@require_GET
@guarded
@vary_on_headers("HX-Request")
def activity(request: HttpRequest) -> HttpResponse:
    rows = [_operation_view(row) for row in audit.recent()]
    context = {"rows": rows, "poll_seconds": _setting("DASHBOARD_OVERVIEW_POLL_SECONDS", 5)}
    template = ("dashboard/partials/activity.html" if _fragment(request)
                else "dashboard/activity.html")
    return render(request, template, context)


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
    if _fragment(request):
        response = render(request, "dashboard/partials/operation.html", {"op": op})
        if not op["running"]:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "dashboard/operation.html", {"op": op})


@require_POST
@guarded
def bulk_start(request: HttpRequest, action: str) -> HttpResponse:
    """Start `action` on every job matching a filter, as a background operation.

    A filter that cannot be read exactly is refused (400) with its reason: an
    action on more jobs than the operator meant cannot be undone. With no
    filter at all, the operator confirms on a page that names the count.
    """
    if action not in operations.ACTIONS:
        raise Http404(f"no action {action!r}")
    chosen = operations.ACTIONS[action]
    if not chosen.allowed(request.user):
        raise PermissionDenied(f"You may not {action} jobs.")
    form = BulkAllForm(request.POST, action=action)
    if not form.is_valid():
        return render(request, "dashboard/bulk_start.html",
                      {"action": chosen, "problems": form.problems()}, status=400)
    filters = form.cleaned_data["filters"]
    if not form.narrows(filters):
        count = bulk.count_matching({})
        if form.cleaned_data["every"] != count.value:
            return render(request, "dashboard/bulk_start.html",
                          {"action": chosen, "count": count, "form": form})
    row = bulk.start(action, request.user, filters, note=form.cleaned_data["note"])
    return redirect("dashboard:operation", operation_id=row.pk)


# --- Status API ----------------------------------------------------------------------


@require_GET
@never_cache
def job_status(request: HttpRequest, job_id: UUID) -> JsonResponse:
    """JSON state of one job for the app's own frontends.

    Only the job's owner (Job.enqueued_by) or staff with jobs.view_job may read
    it (`access.may_read_job`, the table's rule for this route): its result and
    error are job data. Anyone else gets the same 404 as for a job that does not
    exist, so ids cannot be probed; anonymous callers get 401.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Authentication required."}, status=401)
    try:
        reject_unstorable_input(request)
    except BadRequest as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    job = queries.readable_job(request.user, job_id)
    if job is None:
        return JsonResponse({"error": "Not found."}, status=404)
    return JsonResponse(queries.status_payload(job))


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
