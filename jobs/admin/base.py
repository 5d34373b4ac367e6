"""What every job-table admin shares: index-only search and filters, counts that
never read a million rows, and bulk actions through `jobs.ops.operations`.

Read-only where editing would make it lie: no form writes a status. Every bulk
action goes through `jobs.ops.operations.perform`, which checks the permission,
runs the `jobs.core.transitions` change and reports what it did and what it
refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice
from math import ceil
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs import database
from jobs.core import figures
from jobs.core.registry import registered_tasks
from jobs.core.transitions import BulkResult
from jobs.models import Job, Step
from jobs.ops import operations, presentation, search
from jobs.ops.presentation import (
    TIME_RANGES,
    CappedCount,
    bounded_pre,
    capped_count,
    check_selected_ids,
    duration_text,
    id_search,
    json_text,
    reject_unstorable_input,
    status_dot,
    time_range_choices,
)
from jobs.ops.step_runs import progress_text

# --- Display helpers -------------------------------------------------------------------
# Statuses, durations, counts, time ranges and id search are jobs.ops.presentation's,
# shared with the dashboard; what follows is only the admin's own.

ERROR_PREVIEW_CHARS = 80


def truncated(text: str, limit: int = ERROR_PREVIEW_CHARS) -> str:
    text = " ".join(text.split())  # a traceback-ish message on one line
    return text[:limit] + "…" if len(text) > limit else text


def value_url(kind: str, pk: Any, field: str) -> str:
    return reverse("admin:jobs_value", args=[kind, pk, field])


def pretty_json(value: Any, kind: str, pk: Any, field: str) -> SafeString:
    """Indented JSON, escaped (arguments and results are user data), bounded."""
    return bounded_pre(json_text(value), value_url(kind, pk, field), "jobs-json")


def error_details(obj: Any, kind: str) -> SafeString:
    """The error on one line, its traceback folded away until asked for (bounded)."""
    error_class, message, traceback = obj.error_class, obj.error_message, obj.traceback
    if not (error_class or message or traceback):
        return format_html("{}", "-")
    summary = truncated(f"{error_class}: {message}" if message else error_class, 300)
    if not traceback:
        return format_html("<code>{}</code>", summary)
    return format_html("<details><summary><code>{}</code></summary>{}</details>", summary,
                       bounded_pre(traceback, value_url(kind, obj.pk, "traceback")))


def step_progress(step: Step) -> str:
    """As the dashboard says it (jobs.ops.step_runs): "700/1200 row 700", figures once."""
    if step.progress_total is None:
        return "-"
    return progress_text(step.progress_current, step.progress_total, step.progress_message)


class StatusDurationColumns:
    """`status_display` and `duration_display` columns, as jobs.ops.presentation draws them.

    The dot and the duration look exactly as on the dashboard; `status_kind`
    ("job", "step" or "attempt") picks the labels.
    """

    status_kind = "job"

    @admin.display(description="status")
    def status_display(self, obj: Any) -> SafeString:
        return status_dot(obj.status, self.status_kind)

    @admin.display(description="duration")
    def duration_display(self, obj: Any) -> str:
        return duration_text(obj.duration)


def admin_link(obj: Model, text: str | None = None) -> SafeString:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


# --- Search: index lookups only ----------------------------------------------------------


class IndexedSearchMixin:
    """Search that never falls back to `icontains` over a million rows.

    `exact_fields` are each matched exactly (each has an index); whole UUIDs
    or one 8+ digit prefix match `id_field`, by `presentation.id_search`, the
    rule the dashboard's search follows too.
    """

    id_field = "pk"
    exact_fields: tuple[str, ...] = ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        clauses = [Q(**{field: term}) for field in self.exact_fields]
        by_id = id_search(term, self.id_field)
        if by_id is not None:
            clauses.append(by_id)
        if not clauses:
            return queryset.none(), False
        where = clauses[0]
        for clause in clauses[1:]:
            where |= clause
        return queryset.filter(where), False


# --- Filters: each one answered from an index --------------------------------------------


def distinct_values(model: type[Model], field_name: str, limit: int = 200) -> list[str]:
    """The distinct values of an indexed column, by a loose index scan.

    `SELECT DISTINCT queue FROM jobs_job` reads every row; this recursive query
    jumps from one value to the next through the index (one probe per value),
    so it costs milliseconds on a million rows. Works on PostgreSQL and SQLite.
    """
    connection = connections[model.objects.db]
    qn = connection.ops.quote_name
    table, column = qn(model._meta.db_table), qn(model._meta.get_field(field_name).column)
    sql = (
        f"WITH RECURSIVE t(v) AS ("
        f" SELECT MIN({column}) FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > t.v)"
        f" FROM t WHERE t.v IS NOT NULL"
        f") SELECT v FROM t WHERE v IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


class JobColumnFilter(admin.SimpleListFilter):
    """Filter on an indexed Job column; choices come from `distinct_values`, not DISTINCT."""

    column = ""  # the Job field whose values are offered
    lookup = ""  # the ORM path filtered on (may go through a relation)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(v, v) for v in distinct_values(Job, self.column)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.lookup: value}) if value else queryset


class QueueFilter(JobColumnFilter):
    title = "queue"
    parameter_name = "queue"
    column = lookup = "queue"


class TaskFilter(JobColumnFilter):
    title = "task"
    parameter_name = "task"
    column = lookup = "task_name"


class DeadLetterTaskFilter(TaskFilter):
    lookup = "job__task_name"


class RecentFilter(admin.SimpleListFilter):
    """A time window on an indexed timestamp (date_hierarchy's date queries scan the table)."""

    field = ""
    older: tuple[str, str, timedelta] | None = None  # (key, label, age) for "older than"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        choices = time_range_choices()
        if self.older:
            choices.append(self.older[:2])
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value, now = self.value(), timezone.now()
        if value in TIME_RANGES:
            return queryset.filter(**{f"{self.field}__gte": TIME_RANGES[value].start(now)})
        if self.older and value == self.older[0]:
            return queryset.filter(**{f"{self.field}__lt": now - self.older[2]})
        return queryset


class CreatedFilter(RecentFilter):
    title = "created"
    parameter_name = "created"
    field = "created_at"


class FailedAtFilter(RecentFilter):
    title = "failed"
    parameter_name = "failed"
    field = "failed_at"
    older = ("older", "More than 7 days ago", TIME_RANGES["7d"].delta)


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("no", "Unresolved"), ("yes", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("no", "yes"):
            return queryset.filter(resolved_at__isnull=self.value() == "no")
        return queryset


# --- Counting without COUNT(*) over a million rows ----------------------------------------


def _unfiltered(qs: QuerySet) -> bool:
    """No filter, or only the job list's default one (the engine's own jobs left out: a
    sliver of the table, within the estimate's own error)."""
    where = qs.query.where
    return not where or (qs.model is Job and where == search.hide_engine_jobs(
        Job.objects.all(), {}).query.where)


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never reads the whole table.

    Unfiltered on PostgreSQL: the planner's row estimate (`pg_class.reltuples`,
    kept fresh by autovacuum/ANALYZE). Filtered, or on other databases: the
    shared capped count (`presentation.capped_count`, stopping at COUNT_CAP,
    the same cap as the dashboard's). The templates show `count_text`, "about
    N" or "more than COUNT_CAP", so the number never pretends.

    Pages reach the first COUNT_CAP rows only: page 20,000 of a million is an
    `OFFSET 999950` that reads the whole index (seconds). Older rows are one
    filter (or the reversed age sort) away.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_estimate = False
        self.is_capped = False
        self.cap = presentation.COUNT_CAP  # read per request, so tests may lower it
        self.counted: CappedCount | None = None

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        estimate = figures.row_estimate(qs.model, qs.db) if _unfiltered(qs) else None
        if estimate is not None and estimate > self.cap:  # None: not PostgreSQL
            self.is_estimate = True
            return estimate
        self.counted = capped_count(qs, self.cap)
        self.is_capped = self.counted.capped
        return self.counted.value

    @property
    def count_text(self) -> str:
        """The count as the list shows it: "about N", or the capped count's own text."""
        count = self.count  # sets is_estimate or counted
        return f"about {count}" if self.is_estimate else self.counted.text

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, max(1, ceil(self.cap / self.per_page)))


class GuardedAdmin(admin.ModelAdmin):
    """Every page of every jobs admin refuses malformed input with a 400 before any query:
    a NUL in `?queue=`, a forged action with a selected id that is no id, an
    oversized value (see presentation.reject_unstorable_input)."""

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict | None = None) -> HttpResponse:
        reject_unstorable_input(request)
        if request.method == "POST":
            check_selected_ids(self.model, request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        reject_unstorable_input(request)
        # Django's own transaction here is on the router's database, not the engine's.
        with database.atomic():
            return super().changeform_view(request, object_id, form_url, extra_context)

    def history_view(self, request: HttpRequest, object_id: str,
                     extra_context: dict | None = None) -> HttpResponse:
        reject_unstorable_input(request)
        return super().history_view(request, object_id, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: dict | None = None) -> HttpResponse:
        reject_unstorable_input(request)
        with database.atomic():
            return super().delete_view(request, object_id, extra_context)


class LargeTableAdmin(GuardedAdmin):
    """Defaults for the tables that grow to millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # no second, unfiltered COUNT(*)
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per choice
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # History is the truth; old jobs leave through the purge_finished schedule.
        return False


# --- Bulk actions through jobs.operations -------------------------------------------------

ACTION_CHUNK = 2000


def stream_ids(queryset: QuerySet, field: str = "pk") -> Iterator[Any]:
    """The selected ids, without loading a million rows (or model instances).

    PostgreSQL streams them from a server-side cursor, a snapshot that the
    action's own updates cannot disturb. SQLite gives no such isolation within
    one connection, so there the ids (only ever a small table) are read first.
    """
    ids = queryset.order_by().values_list(field, flat=True)
    if connections[queryset.db].vendor == "postgresql":
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


