"""The dashboard's job pages: the list and its actions, a job's page and its live part.

Thin views: check access (`dashboard.access.guarded`), validate input
(`dashboard.forms`), ask `dashboard.queries`, act through `jobs.ops`, and
answer with the page or its fragment (`dashboard.views.rendering`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap

from dashboard import queries
from dashboard.access import guarded
from dashboard.forms import BulkActionForm, BulkAllForm, JobFilterForm
from dashboard.views.rendering import (
    add_message,
    flash,
    page_or_fragment,
    setting,
    stop_polling,
)
from jobs.core.registry import registered_tasks
from jobs.models import Step
from jobs.ops import bulk, operations
from jobs.ops.forms import StepLimitsForm
from jobs.ops.values import value_text

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
    """The filtered job list; an invalid filter is the form's error, with 400."""
    form = JobFilterForm(request.GET)
    context = _list_context(request, form)
    context["task_names"] = sorted(registered_tasks())
    return page_or_fragment(request, "dashboard/job_list.html", "dashboard/partials/job_list.html",
                            context, status=200 if form.is_valid() else 400)


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
    return _after_action(request, data, flash(report.message, level))


def _action_refused(request: HttpRequest, form: BulkActionForm) -> HttpResponse:
    errors = " ".join(form.non_field_errors()) or "The request was malformed."
    if request.htmx:
        response = render(request, "dashboard/partials/flash.html",
                          {"flash": flash(errors, "error"), "flash_oob": True}, status=400)
        return reswap(response, "none")  # keep the page; the flash arrives out of band
    messages.error(request, errors)
    # Back to the list the form came from, rebuilt from its filters: never to a URL
    # the request names (a Referer can point anywhere).
    form = JobFilterForm(QueryDict(form.data.get("filters", "")))
    return redirect(f"{reverse('dashboard:jobs')}?{form.querystring()}")


def _after_action(request: HttpRequest, data: dict[str, Any],
                  said: dict[str, str]) -> HttpResponse:
    """Re-render what the operator was looking at, with the outcome on top."""
    if data["origin"] == "detail":
        job_id = data["ids"][0]
        if request.htmx:
            return _live(request, job_id, flash=said)
        add_message(request, said)
        return redirect("dashboard:job", job_id=job_id)
    filters = data["filters"] or ""
    if request.htmx:
        form = JobFilterForm(QueryDict(filters))
        context = {**_list_context(request, form), "flash": said, "flash_oob": True}
        return render(request, "dashboard/partials/job_list.html", context)
    add_message(request, said)
    return redirect(f"{reverse('dashboard:jobs')}?{filters}")


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
        "poll_seconds": setting("DASHBOARD_DETAIL_POLL_SECONDS", 2),
        **extra,
    }


@require_GET
@guarded
def job_detail(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """A job's page: its steps, attempts, data and the actions the user may take."""
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
        stop_polling(response)
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
    said = flash(f"Saved the limits of step “{step.name}”; resume the job to run with them.")
    if request.htmx:
        # Said next to the form, where the operator is looking, not at the page's top.
        return _live(request, job_id, flash=said, saved_step=step.pk, flash_inline=True)
    messages.success(request, said["text"])
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
