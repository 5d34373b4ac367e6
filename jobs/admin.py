"""Operators' view of the truth, built to stay fast on a table of a million jobs.

Read-only where editing would make it lie: no form writes a status. Every bulk
action goes through `jobs.operations.perform`, which checks the permission,
runs the `jobs.transitions` change and reports what it did and what it
refused. Sections: shared helpers (display, search, filters, paginator,
actions), then Job, Attempt, Step, DeadLetter and Schedule.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from math import ceil
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import F, Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobs import operations, schedules, serialization
from jobs.api import registered_tasks
from jobs.exceptions import JobsError
from jobs.models import Attempt, DeadLetter, Job, JobStatus, Schedule, Step
from jobs.steps import validate_limits
from jobs.transitions import BulkResult

# --- Display helpers -------------------------------------------------------------------

# Also imported by the dashboard: one palette for every screen.
STATUS_COLOURS = {
    JobStatus.QUEUED: "#6b7280",
    JobStatus.RUNNING: "#2563eb",
    JobStatus.RETRYING: "#d97706",
    JobStatus.SUCCEEDED: "#16a34a",
    JobStatus.DEAD: "#dc2626",
    JobStatus.CANCELLED: "#9ca3af",
}

ERROR_PREVIEW_CHARS = 80


def status_dot(status: str) -> str:
    """A coloured dot plus the label: colour for a glance, text for everyone else."""
    label = JobStatus(status).label
    return format_html(
        '<span style="white-space:nowrap"><span style="color:{}" aria-hidden="true">&#9679;'
        "</span> {}</span>",
        STATUS_COLOURS.get(status, "#000"),
        label,
    )


def short_duration(delta: timedelta | None) -> str:
    """'0.42 s', '12 s', '5 min', '3 h 12 min', '4 d 3 h': enough precision to triage."""
    if delta is None:
        return "-"
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def truncated(text: str, limit: int = ERROR_PREVIEW_CHARS) -> str:
    text = " ".join(text.split())  # a traceback-ish message on one line
    return text[:limit] + "…" if len(text) > limit else text


def pretty_json(value: Any) -> SafeString:
    """Indented JSON in a <pre>, escaped: arguments and results are user data."""
    return format_html('<pre class="jobs-json">{}</pre>', serialization.pretty_json(value))


def error_details(error_class: str, message: str, traceback: str) -> SafeString:
    """The error on one line, its traceback folded away until asked for."""
    if not (error_class or message or traceback):
        return format_html("{}", "-")
    summary = f"{error_class}: {message}" if message else error_class
    if not traceback:
        return format_html("<code>{}</code>", summary)
    return format_html(
        "<details><summary><code>{}</code></summary><pre>{}</pre></details>",
        summary, traceback,
    )


def step_progress(step: Step) -> str:
    if step.progress_total is None:
        return "-"
    return f"{step.progress_current or 0} / {step.progress_total} {step.progress_message}".strip()


def admin_link(obj: Model, text: str | None = None) -> SafeString:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


# --- Search: index lookups only ----------------------------------------------------------

HEX = frozenset("0123456789abcdef")


def id_lookup(term: str, field: str = "pk") -> Q | None:
    """Q for job ids in `term`: whole UUIDs (one or several), or a prefix of one.

    A prefix of 8+ hex digits (what the list shows) becomes a range on the
    primary key index, which works for PostgreSQL's uuid and SQLite's hex text
    alike; `icontains` on a UUID column would read every row.
    """
    tokens = term.replace(",", " ").split()
    if not tokens:
        return None
    try:
        return Q(**{f"{field}__in": [UUID(t) for t in tokens]})
    except ValueError:
        pass
    digits = term.replace("-", "").lower()
    if len(tokens) == 1 and 8 <= len(digits) < 32 and set(digits) <= HEX:
        low, high = UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))
        return Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return None


class IndexedSearchMixin:
    """Search that never falls back to `icontains` over a million rows.

    `exact_fields` are each matched exactly (each has an index); a UUID term
    (or a prefix of one) matches `id_field`.
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
        by_id = id_lookup(term, self.id_field)
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
    ranges: dict[str, tuple[str, timedelta]] = {
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(hours=24)),
        "7d": ("Last 7 days", timedelta(days=7)),
    }
    older: tuple[str, str, timedelta] | None = None  # (key, label, age) for "older than"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        choices = [(key, label) for key, (label, _) in self.ranges.items()]
        if self.older:
            choices.append(self.older[:2])
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value, now = self.value(), timezone.now()
        if value in self.ranges:
            return queryset.filter(**{f"{self.field}__gte": now - self.ranges[value][1]})
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
    older = ("older", "More than 7 days ago", timedelta(days=7))


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


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never reads the whole table.

    Unfiltered on PostgreSQL: the planner's row estimate (`pg_class.reltuples`,
    kept fresh by autovacuum/ANALYZE). Filtered, or on other databases: an
    exact count capped at CAP + 1 (`COUNT(*)` over a `LIMIT` subquery). The
    templates say "about N" / "more than CAP" so the number never pretends.

    Pages reach the first CAP rows only: page 20,000 of a million is an
    `OFFSET 999950` that reads the whole index (seconds). Older rows are one
    filter (or the reversed age sort) away.
    """

    CAP = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_estimate = False
        self.is_capped = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        connection = connections[qs.db]
        if not qs.query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                    [connection.ops.quote_name(qs.model._meta.db_table)],
                )
                row = cursor.fetchone()
            estimate = row[0] if row else -1  # -1: never analysed
            if estimate > self.CAP:
                self.is_estimate = True
                return int(estimate)
        counted = qs.order_by()[: self.CAP + 1].count()
        self.is_capped = counted > self.CAP
        return counted

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, max(1, ceil(self.CAP / self.per_page)))


class LargeTableAdmin(admin.ModelAdmin):
    """Defaults for the tables that grow to millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # no second, unfiltered COUNT(*)
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per choice
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # History is the truth; old jobs leave through jobs.schedules.purge_finished.
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
        count = jobs.order_by()[: EstimatedCountPaginator.CAP + 1].count()
        context = {
            **self.admin_site.each_context(request),
            "title": "Resolve dead letters",
            "opts": self.opts,
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "count": count,
            "capped": count > EstimatedCountPaginator.CAP,
            "sample": list(jobs.order_by()[:20]),
            "default_note": f"resolved from the admin by {request.user}",
            "form_url": request.get_full_path(),
        }
        return TemplateResponse(request, "admin/jobs/resolve_confirmation.html", context)

    @staticmethod
    def resolve_note(request: HttpRequest) -> str:
        note = request.POST.get("note", "").strip()
        return note or f"resolved from the admin by {request.user}"


# --- Job -----------------------------------------------------------------------------------


class AttemptInline(admin.TabularInline):
    """Every try, newest first, each with its error and (folded) traceback."""

    model = Attempt
    extra = 0
    can_delete = False
    ordering = ("-number",)
    fields = ("number", "status", "started_at", "duration_display", "worker", "step",
              "error")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("step")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="duration")
    def duration_display(self, obj: Attempt) -> str:
        return short_duration(obj.duration)

    @admin.display(description="error")
    def error(self, obj: Attempt) -> SafeString:
        return error_details(obj.error_class, obj.error_message, obj.traceback)


class StepInline(admin.TabularInline):
    """The job's checkpoints; each links to its Step page, where limits are edited."""

    model = Step
    extra = 0
    can_delete = False
    ordering = ("position", "id")
    fields = ("position", "step_link", "status", "attempts_display", "limits_display",
              "progress", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="step")
    def step_link(self, obj: Step) -> SafeString:
        return admin_link(obj, obj.name)

    @admin.display(description="attempts")
    def attempts_display(self, obj: Step) -> str:
        return f"{obj.attempts} / {obj.max_attempts or '-'}"

    @admin.display(description="limits")
    def limits_display(self, obj: Step) -> SafeString:
        return pretty_json(obj.limits) if obj.limits else format_html("{}", "-")

    @admin.display(description="progress")
    def progress(self, obj: Step) -> str:
        return step_progress(obj)

    @admin.display(description="error")
    def error(self, obj: Step) -> SafeString:
        return error_details(obj.error_class, obj.error_message, obj.traceback)


@admin.register(Job)
class JobAdmin(IndexedSearchMixin, OperationsActionsMixin, LargeTableAdmin):
    list_display = ("short_id", "status_display", "task_name_display", "queue_display",
                    "attempts_display", "age", "duration", "last_error_short")
    # Only columns with an index are sortable: sorting a million rows by
    # anything else is a full sort on every page view.
    sortable_by = ("age",)
    ordering = ("-created_at",)
    list_filter = ("status", QueueFilter, TaskFilter, CreatedFilter)
    search_fields = ("id", "idempotency_key", "task_name")  # shown; matched exactly below
    search_help_text = ("A job id (or its first 8+ characters), an idempotency key or a task "
                        "name — matched exactly.")
    exact_fields = ("idempotency_key", "task_name")
    inlines = [StepInline, AttemptInline]
    actions = ["requeue_selected", "resume_selected", "cancel_selected", "resolve_selected"]
    gated_actions = {"requeue_selected": "requeue", "resume_selected": "resume",
                     "cancel_selected": "cancel", "resolve_selected": "resolve"}
    fieldsets = (
        (None, {"fields": ("id", "status_display", "task_name", "queue", "priority",
                           "attempts_display", "last_attempt_number", "idempotency_key",
                           "enqueued_by")}),
        ("Timing", {"fields": ("created_at", "run_after", "started_at", "finished_at",
                               "age", "duration")}),
        ("Arguments and outcome", {"fields": ("args_pretty", "kwargs_pretty", "result_pretty",
                                              "last_error_pre")}),
        ("Worker and lease", {"classes": ("collapse",),
                              "fields": ("lease_owner", "lease_expires_at", "heartbeat_at",
                                         "reserved_until", "cancel_requested_at")}),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Viewing only: saving a form would bypass the state machine.
        return False

    # List columns ----------------------------------------------------------------

    @admin.display(description="id")
    def short_id(self, obj: Job) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="status")
    def status_display(self, obj: Job) -> str:
        return status_dot(obj.status)

    @admin.display(description="task")
    def task_name_display(self, obj: Job) -> str:
        return obj.task_name

    @admin.display(description="queue")
    def queue_display(self, obj: Job) -> str:
        return obj.queue

    @admin.display(description="attempts")
    def attempts_display(self, obj: Job) -> str:
        return f"{obj.attempt_count} / {obj.max_attempts}"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Job) -> str:
        return short_duration(timezone.now() - obj.created_at)

    @admin.display(description="duration")
    def duration(self, obj: Job) -> str:
        if obj.started_at is None:
            return "-"
        end = obj.finished_at or (timezone.now() if obj.status == JobStatus.RUNNING else None)
        return short_duration(end - obj.started_at) if end else "-"

    @admin.display(description="last error")
    def last_error_short(self, obj: Job) -> str:
        return truncated(obj.last_error)

    # Detail fields ---------------------------------------------------------------

    @admin.display(description="args")
    def args_pretty(self, obj: Job) -> SafeString:
        return pretty_json(obj.args)

    @admin.display(description="kwargs")
    def kwargs_pretty(self, obj: Job) -> SafeString:
        return pretty_json(obj.kwargs)

    @admin.display(description="result")
    def result_pretty(self, obj: Job) -> SafeString | str:
        return pretty_json(obj.result) if obj.result is not None else "-"

    @admin.display(description="last error")
    def last_error_pre(self, obj: Job) -> SafeString:
        return format_html("<pre>{}</pre>", obj.last_error) if obj.last_error else "-"

    # Actions ---------------------------------------------------------------------

    @admin.action(permissions=["requeue"], description=operations.ACTIONS["requeue"].label)
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self.run_operation(request, "requeue", stream_ids(queryset))

    @admin.action(permissions=["resume"], description=operations.ACTIONS["resume"].label)
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self.run_operation(request, "resume", stream_ids(queryset))

    @admin.action(permissions=["cancel"], description=operations.ACTIONS["cancel"].label)
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self.run_operation(request, "cancel", stream_ids(queryset))

    @admin.action(permissions=["resolve"], description="Resolve dead letters (with a note)…")
    def resolve_selected(self, request: HttpRequest,
                         queryset: QuerySet[Job]) -> TemplateResponse | None:
        page = self.resolve_note_page(request, queryset)
        if page is not None:
            return page
        self.run_operation(request, "resolve", stream_ids(queryset),
                           note=self.resolve_note(request))
        return None


# --- Attempt -------------------------------------------------------------------------------


@admin.register(Attempt)
class AttemptAdmin(IndexedSearchMixin, LargeTableAdmin):
    """Read-only: an attempt is a record of what happened."""

    list_display = ("job_link", "number", "status", "started_at", "duration_display",
                    "worker", "error_short")
    list_filter = ("status",)
    list_select_related = ("job",)
    # Newest first by the primary key: Meta.ordering ("job", ...) would join
    # and sort by the job's own ordering.
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("job__id",)
    search_help_text = "A job id (or its first 8+ characters)."
    id_field = "job_id"
    fields = ("job_link", "number", "status", "step", "started_at", "finished_at",
              "duration_display", "retry_at", "worker", "error_class", "error_message",
              "traceback_pre")
    readonly_fields = fields

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="job")
    def job_link(self, obj: Attempt) -> SafeString:
        return admin_link(obj.job, f"{obj.job.task_name} {str(obj.job_id)[:8]}")

    @admin.display(description="duration")
    def duration_display(self, obj: Attempt) -> str:
        return short_duration(obj.duration)

    @admin.display(description="error")
    def error_short(self, obj: Attempt) -> str:
        if not obj.error_class:
            return ""
        return truncated(f"{obj.error_class}: {obj.error_message}")

    @admin.display(description="traceback")
    def traceback_pre(self, obj: Attempt) -> SafeString:
        return format_html("<pre>{}</pre>", obj.traceback) if obj.traceback else "-"


# --- Step ----------------------------------------------------------------------------------


class StepLimitsForm(forms.ModelForm):
    """Only `limits` is editable, and only within what the code declared."""

    class Meta:
        model = Step
        fields = ["limits"]

    def clean_limits(self) -> dict[str, Any]:
        # self.instance.limits is still the saved value here (assigned after clean).
        return validate_limits(self.instance.limits or {}, self.cleaned_data.get("limits"))


@admin.register(Step)
class StepAdmin(IndexedSearchMixin, LargeTableAdmin):
    """Read-only except `limits`, which an operator raises before resuming the job."""

    form = StepLimitsForm
    list_display = ("name", "job_link", "position", "status", "attempts", "limits",
                    "finished_at")
    list_filter = ("status",)
    list_select_related = ("job",)
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("job__id", "name")
    search_help_text = "A job id (or its first 8+ characters) or an exact step name."
    id_field = "job_id"
    exact_fields = ("name",)
    fields = ("job_link", "position", "name", "status", "limits", "attempts",
              "max_attempts", "timeout", "progress", "started_at", "finished_at",
              "error", "result_pretty")
    readonly_fields = tuple(f for f in fields if f != "limits")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Raising a limit is part of resuming a job: the same permission.
        return operations.ACTIONS["resume"].allowed(request.user)

    def save_model(self, request: HttpRequest, obj: Step, form: forms.ModelForm,
                   change: bool) -> None:
        # Write limits only: a full save would overwrite status or progress that
        # a worker wrote while the form was open.
        obj.save(update_fields=["limits"])

    @admin.display(description="job")
    def job_link(self, obj: Step) -> SafeString:
        return admin_link(obj.job, f"{obj.job.task_name} {str(obj.job_id)[:8]}")

    @admin.display(description="progress")
    def progress(self, obj: Step) -> str:
        return step_progress(obj)

    @admin.display(description="error")
    def error(self, obj: Step) -> SafeString:
        return error_details(obj.error_class, obj.error_message, obj.traceback)

    @admin.display(description="result")
    def result_pretty(self, obj: Step) -> SafeString:
        return pretty_json(obj.result)


# --- DeadLetter ----------------------------------------------------------------------------


@admin.register(DeadLetter)
class DeadLetterAdmin(IndexedSearchMixin, OperationsActionsMixin, LargeTableAdmin):
    list_display = ("job_link", "task", "final_error", "attempts", "failed_at",
                    "resolved_display", "resolved_by")
    list_filter = (ResolvedFilter, DeadLetterTaskFilter, FailedAtFilter)
    list_select_related = ("job", "resolved_by")
    # Unresolved first (newest failure first), then the most recently resolved.
    ordering = (F("resolved_at").desc(nulls_first=True), "-failed_at")
    sortable_by = ()
    search_fields = ("job__id",)
    search_help_text = "A job id (or its first 8+ characters)."
    id_field = "job_id"
    fields = ("job_link", "task", "error_class", "error_message", "traceback_pre", "attempts",
              "failed_at", "resolved_at", "resolved_by", "note")
    readonly_fields = tuple(f for f in fields if f != "note")
    actions = ["resolve_selected", "requeue_selected"]
    gated_actions = {"resolve_selected": "resolve", "requeue_selected": "requeue"}

    @admin.display(description="job")
    def job_link(self, obj: DeadLetter) -> SafeString:
        return admin_link(obj.job, str(obj.job_id)[:8])

    @admin.display(description="task")
    def task(self, obj: DeadLetter) -> str:
        return obj.job.task_name

    @admin.display(description="final error")
    def final_error(self, obj: DeadLetter) -> str:
        return truncated(f"{obj.error_class}: {obj.error_message}" if obj.error_message
                         else obj.error_class)

    @admin.display(description="resolved")
    def resolved_display(self, obj: DeadLetter) -> str:
        return obj.resolved_at.strftime("%Y-%m-%d %H:%M") if obj.resolved_at else "no"

    @admin.display(description="traceback")
    def traceback_pre(self, obj: DeadLetter) -> SafeString:
        return format_html("<pre>{}</pre>", obj.traceback) if obj.traceback else "-"

    @admin.action(permissions=["resolve"], description="Resolve selected dead letters…")
    def resolve_selected(self, request: HttpRequest,
                         queryset: QuerySet[DeadLetter]) -> TemplateResponse | None:
        open_letters = queryset.filter(resolved_at__isnull=True)
        jobs = Job.objects.filter(pk__in=open_letters.values("job_id"))
        page = self.resolve_note_page(request, jobs)
        if page is not None:
            return page
        # A job has at most one open letter, so resolving "the open letter of
        # each job" resolves exactly the selected open letters; letters already
        # resolved are reported as skipped.
        already = list(queryset.filter(resolved_at__isnull=False)
                       .values_list("job_id", flat=True))
        report = perform_in_chunks("resolve", request.user,
                                   stream_ids(open_letters, "job_id"),
                                   note=self.resolve_note(request))
        report.result.skipped.extend(already)
        self.report(request, report)
        return None

    @admin.action(permissions=["requeue"], description="Requeue the jobs of the selected")
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self.run_operation(request, "requeue", stream_ids(queryset.distinct(), "job_id"))


# --- Schedule ------------------------------------------------------------------------------

PREVIEW_COUNT = 5


def preview_html(times: list[datetime], time_zone: str) -> SafeString:
    items = format_html_join(
        "", "<li>{}</li>", ((schedules.format_run(t, time_zone),) for t in times)
    )
    return format_html("Next {} runs:<ul>{}</ul>", len(times), items)


class CronInput(forms.TextInput):
    """The expression plus a Preview button: the operator sees the times before saving."""

    def render(self, name: str, value: object, attrs: dict | None = None,
               renderer: object = None) -> SafeString:
        field = super().render(name, value, attrs, renderer)
        return format_html(
            '{} <button type="submit" name="_preview" value="1" class="button">'
            "Preview next {} runs</button>", field, PREVIEW_COUNT,
        )


class TimeZoneInput(forms.TextInput):
    """Free text with the IANA names as suggestions; the model validates the choice."""

    def render(self, name: str, value: object, attrs: dict | None = None,
               renderer: object = None) -> SafeString:
        attrs = {**(attrs or {}), "list": "schedule-time-zones"}
        options = format_html_join(
            "", '<option value="{}">', ((z,) for z in sorted(schedules.known_time_zones()))
        )
        return format_html('{}<datalist id="schedule-time-zones">{}</datalist>',
                           super().render(name, value, attrs, renderer), options)


class ScheduleForm(forms.ModelForm):
    """Validates like Schedule.full_clean and computes the next runs from the submitted data."""

    task_name = forms.ChoiceField(choices=(), help_text="A registered task.")

    class Meta:
        model = Schedule
        fields = ["name", "task_name", "args", "kwargs", "cron", "time_zone", "enabled",
                  "overlap_policy", "misfire_policy", "jitter_seconds"]
        widgets = {"cron": CronInput, "time_zone": TimeZoneInput}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.preview: list[datetime] = []
        if "task_name" in self.fields:
            self.fields["task_name"].choices = [("", "---------")] + [
                (name, name) for name in sorted(registered_tasks())
            ]
        if not self.is_bound and self.instance.pk:
            self._set_preview(self.instance.cron, self.instance.time_zone)

    def clean(self) -> dict:
        data = super().clean()
        self._set_preview(data.get("cron"), data.get("time_zone"))
        return data

    def _set_preview(self, cron: str | None, time_zone: str | None) -> None:
        """Fill self.preview when both values are valid; the model reports them otherwise."""
        if not cron or not time_zone or "cron" not in self.fields:
            return
        try:
            cron = schedules.validate_cron(cron)
            schedules.validate_time_zone(time_zone)
        except ValidationError:
            return
        self.preview = schedules.upcoming(cron, time_zone, PREVIEW_COUNT)
        self.fields["cron"].help_text = preview_html(self.preview, time_zone)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "task_name", "when", "enabled", "next_run_display", "last_run_at",
                    "last_job", "overlap_policy", "misfire_policy", "last_error_short")
    list_filter = ("enabled", "task_name")
    search_fields = ("name", "task_name")
    list_select_related = ("last_job",)
    readonly_fields = ("next_run_display", "last_run_at", "last_job", "last_error",
                       "created_at")
    fieldsets = (
        (None, {"fields": ("name", "task_name", "args", "kwargs")}),
        ("When", {"fields": ("cron", "time_zone", "enabled", "next_run_display")}),
        ("Policies", {"fields": ("overlap_policy", "misfire_policy", "jitter_seconds")}),
        ("Last run", {"fields": ("last_run_at", "last_job", "last_error", "created_at")}),
    )
    actions = ["run_now_selected"]

    @admin.display(description="schedule", ordering="cron")
    def when(self, obj: Schedule) -> str:
        return f"{obj.cron} ({obj.time_zone})"

    @admin.display(description="next run", ordering="next_run_at")
    def next_run_display(self, obj: Schedule) -> str:
        if obj.next_run_at is None:
            return "disabled" if not obj.enabled else "-"
        return schedules.format_run(obj.next_run_at, obj.time_zone)

    @admin.display(description="last error")
    def last_error_short(self, obj: Schedule) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Run selected schedules now (once each)")
    def run_now_selected(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            try:
                job = schedules.run_now(schedule)
            except JobsError as exc:
                self.message_user(request, f"{schedule.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{schedule.name}: enqueued job {job.pk}")

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST" and "_preview" in request.POST:
            return self._preview_view(request, object_id, form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _preview_view(self, request: HttpRequest, object_id: str | None, form_url: str,
                      extra_context: dict | None) -> HttpResponse:
        """Re-render the submitted form with its next runs; nothing is saved."""
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        allowed = (self.has_change_permission(request, obj) if obj
                   else self.has_add_permission(request))
        if not allowed:
            raise PermissionDenied
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(request, obj, change=obj is not None,
                                   fields=flatten_fieldsets(fieldsets))
        form = form_class(request.POST, instance=obj)
        form.is_valid()
        if form.preview:
            self.message_user(request, format_html(
                "Preview only, nothing saved. {}",
                preview_html(form.preview, form.cleaned_data["time_zone"]),
            ))
        admin_form = helpers.AdminForm(
            form, list(fieldsets), self.get_prepopulated_fields(request, obj),
            self.get_readonly_fields(request, obj), model_admin=self,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{'Change' if obj else 'Add'} {self.opts.verbose_name}",
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": object_id,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=obj is None,
                                       change=obj is not None, obj=obj, form_url=form_url)
