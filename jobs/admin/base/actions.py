"""The plumbing of the admin's bulk actions, through `jobs.ops.operations`.

Every action goes through `operations.perform`, which checks the permission,
runs the `jobs.core.transitions` change and reports what it did and what it
refused; here the admin streams the selected ids in chunks (a "select all"
of a million jobs loads no row), maps the job list's filters onto
`jobs.ops.search`'s, and refuses a forged POST of a hidden action with 403.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from jobs import dialect
from jobs.admin.base.filters import CreatedFilter
from jobs.core.registry import registered_tasks
from jobs.core.transitions import BulkResult
from jobs.ops import operations
from jobs.ops.lookups import TIME_RANGES, capped_count

# --- Bulk actions through jobs.operations -------------------------------------------------

ACTION_CHUNK = 2000


def stream_ids(queryset: QuerySet, field: str = "pk") -> Iterator[Any]:
    """The selected ids, without loading a million rows (or model instances).

    PostgreSQL streams them from a server-side cursor, a snapshot that the
    action's own updates cannot disturb. SQLite gives no such isolation within
    one connection, so there the ids (only ever a small table) are read first.
    """
    ids = queryset.order_by().values_list(field, flat=True)
    if dialect.of(connections[queryset.db]).streams_snapshots:
        return ids.iterator(chunk_size=ACTION_CHUNK)
    return iter(list(ids))


def perform_in_chunks(
    name: str, user: Any, ids: Iterable[Any], **options: Any
) -> operations.Report:
    """`operations.perform` on ACTION_CHUNK ids at a time, merged into one report.

    For a "select all" of a million jobs: no row is loaded, each call's IN-list
    stays small, and jobs.transitions splits each chunk again into transactions
    of 500 rows. Only the ids themselves are kept, for the report's counts.
    """
    action = operations.ACTIONS[name]
    total = BulkResult()
    ids = iter(ids)
    chunk = list(islice(ids, ACTION_CHUNK))
    while True:
        # Called at least once, so an empty selection is still permission-checked.
        report = operations.perform(name, user, chunk, **options)
        total.done += report.result.done
        total.skipped += report.result.skipped
        total.requested += report.result.requested
        chunk = list(islice(ids, ACTION_CHUNK))
        if not chunk:
            break
    return operations.Report(action, total)


# The job changelist's own GET parameters -> jobs.ops.search filters; anything else in
# the URL (a filter this mapping does not know) must not be silently dropped.
_ADMIN_FILTERS = {"status__exact": "status", "queue": "queue", "task": "task", "q": "q",
                  "engine": "engine"}
_ADMIN_IGNORED = {"o", "p", "e", "_changelist_filters"}


def admin_filters(request: HttpRequest) -> dict[str, Any] | None:
    """The job list's filters as cleaned jobs.ops.search values, or None if one of them
    has no equivalent there (so the caller refuses rather than acting on more jobs)."""
    out: dict[str, Any] = {}
    for key, value in request.GET.items():
        if key in _ADMIN_IGNORED or not value:
            continue
        if key == CreatedFilter.parameter_name and value in TIME_RANGES:
            out["last"] = TIME_RANGES[value].delta
        elif key in _ADMIN_FILTERS:
            out[_ADMIN_FILTERS[key]] = value.strip() if key == "q" else value
        else:
            return None
    if out.get("q") and out["q"] in registered_tasks():
        out["task"] = out.pop("q")  # the admin's search matches task names exactly too
    return out


class OperationsActionsMixin:
    """Admin actions gated by `jobs.operations.ACTIONS[...].allowed`.

    `@admin.action(permissions=[name])` hides an action from users without its
    permission through `has_<name>_permission`; a forged POST of a hidden action
    is refused with a 403 in `changelist_view` (Django would only re-render the
    list with "No action selected").
    """

    # admin action function name -> jobs.operations action name
    gated_actions: dict[str, str] = {}

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return operations.ACTIONS["requeue"].allowed(request.user)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return operations.ACTIONS["cancel"].allowed(request.user)

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return operations.ACTIONS["resume"].allowed(request.user)

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return operations.ACTIONS["resolve"].allowed(request.user)

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST":
            for posted in request.POST.getlist("action"):
                name = self.gated_actions.get(posted)
                if name and not operations.ACTIONS[name].allowed(request.user):
                    raise PermissionDenied(f"{request.user} may not {name} jobs")
        return super().changelist_view(request, extra_context)

    def report(self, request: HttpRequest, report: operations.Report) -> None:
        r = report.result
        level = messages.SUCCESS if (r.done or r.requested) else messages.WARNING
        self.message_user(request, report.message, level)

    def run_operation(self, request: HttpRequest, name: str, ids: Iterable[Any],
                      **options: Any) -> operations.Report:
        report = perform_in_chunks(name, request.user, ids, **options)
        self.report(request, report)
        return report

    def resolve_note_page(self, request: HttpRequest, jobs: QuerySet) -> TemplateResponse | None:
        """The intermediate page asking for a note (`jobs`: those with letters to
        resolve); None once the operator confirmed it."""
        if request.POST.get("confirm") == "yes":
            return None
        count = capped_count(jobs)
        context = {
            **self.admin_site.each_context(request),
            "title": "Resolve dead letters",
            "opts": self.opts,
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "count": count,
            "sample": list(jobs.order_by()[:20]),
            "default_note": f"resolved from the admin by {request.user}",
            "form_url": request.get_full_path(),
        }
        return TemplateResponse(request, "admin/jobs/resolve_confirmation.html", context)

    @staticmethod
    def resolve_note(request: HttpRequest) -> str:
        note = request.POST.get("note", "").strip()
        return note or f"resolved from the admin by {request.user}"
