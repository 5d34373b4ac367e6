"""What every job-table admin shares, one module a job.

- `display`: how a row is drawn (errors, JSON, progress, statuses, links);
- `filters`: search and list filters, each answered from an index (their SQL);
- `pagination`: counts and pages that never read a million rows;
- `admins`: the ModelAdmin bases (`GuardedAdmin`, `LargeTableAdmin`);
- `actions`: bulk actions through `jobs.ops.operations`, in chunks.

Read-only where editing would make it lie: no form writes a status. The
names are re-exported here, so `from jobs.admin.base import ...` keeps working.
"""

from jobs.admin.base.actions import (
    ACTION_CHUNK,
    OperationsActionsMixin,
    admin_filters,
    perform_in_chunks,
    stream_ids,
)
from jobs.admin.base.admins import GuardedAdmin, LargeTableAdmin
from jobs.admin.base.display import (
    ERROR_PREVIEW_CHARS,
    StatusDurationColumns,
    admin_link,
    error_details,
    pretty_json,
    step_progress,
    truncated,
    value_url,
)
from jobs.admin.base.filters import (
    CreatedFilter,
    DeadLetterTaskFilter,
    FailedAtFilter,
    IndexedSearchMixin,
    JobColumnFilter,
    QueueFilter,
    RecentFilter,
    ResolvedFilter,
    TaskFilter,
    distinct_values,
)
from jobs.admin.base.pagination import EstimatedCountPaginator

__all__ = [
    "ACTION_CHUNK", "CreatedFilter", "DeadLetterTaskFilter", "ERROR_PREVIEW_CHARS",
    "EstimatedCountPaginator", "FailedAtFilter", "GuardedAdmin", "IndexedSearchMixin",
    "JobColumnFilter", "LargeTableAdmin", "OperationsActionsMixin", "QueueFilter",
    "RecentFilter", "ResolvedFilter", "StatusDurationColumns", "TaskFilter", "admin_filters",
    "admin_link", "distinct_values", "error_details", "perform_in_chunks", "pretty_json",
    "step_progress", "stream_ids", "truncated", "value_url",
]
