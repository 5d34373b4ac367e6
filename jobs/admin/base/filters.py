"""The jobs admin's search and list filters, each answered from an index.

Django's defaults read a whole table for a search (`icontains`), a filter's
choices (`SELECT DISTINCT`) or a date (date_hierarchy): on a million jobs
that is seconds per page. Here search is exact or an id range
(`jobs.ops.lookups.id_search`, the dashboard's rule too), a filter's choices
come from a loose index scan (`distinct_values`, its SQL below), and a time
filter is one range on an indexed timestamp (`jobs.ops.lookups.TIME_RANGES`).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db import connections
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from jobs.models import Job
from jobs.ops.lookups import TIME_RANGES, id_search, time_range_choices

# --- Search: index lookups only ----------------------------------------------------------


class IndexedSearchMixin:
    """Search that never falls back to `icontains` over a million rows.

    `exact_fields` are each matched exactly (each has an index); whole UUIDs
    or one 8+ digit prefix match `id_field`, by `lookups.id_search`, the
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
