"""Counting and paging the admin's lists without COUNT(*) over a million rows.

The changelist counts its rows for the paginator and offers every page; on a
table of millions both read the whole table. `EstimatedCountPaginator`
answers from the planner's estimate or the shared capped count instead.
"""

from __future__ import annotations

from math import ceil
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from jobs.core import figures
from jobs.models import Job
from jobs.ops import lookups, search
from jobs.ops.lookups import CappedCount, capped_count

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
    shared capped count (`lookups.capped_count`, stopping at COUNT_CAP,
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
        self.cap = lookups.COUNT_CAP  # read per request, so tests may lower it
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
