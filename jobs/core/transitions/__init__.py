"""Every status change of a job or of a step, and nothing else, lives here.

Each change is one conditional `UPDATE ... WHERE status IN (...)`: of two
processes racing for the same change, the database lets exactly one match.
The runner, the step runner, the reaper and the operations module call these
functions; nothing else writes `status`.

Changes that belong to one attempt (succeed, retry, bury, and every step
write) are also fenced by the attempt number, so a worker that lost its job
(reaped after its lease ran out, say) can change nothing any more: not the
job, not a step of the attempt that replaced it, not even a progress figure.

The package, by job: `machine` (the transitions and the one writer of
`status`), `errors` (an error as it is stored), `attempts` (claim, succeed,
fail, stop_cancelled, release, the lease), `operator` (cancel, requeue, resume,
dead letters, in batches) and `steps`. Callers use the names below:
`from jobs.core import transitions; transitions.claim(...)`.
"""

from __future__ import annotations

from jobs.core.transitions.attempts import (
    claim,
    fail,
    release,
    renew_lease,
    stop_cancelled,
    succeed,
)
from jobs.core.transitions.errors import LAST_ERROR_CHARS, ErrorInfo, class_path
from jobs.core.transitions.machine import (
    ALLOWED,
    BURY,
    CANCEL,
    CLAIM,
    RELEASE,
    REQUEUE,
    RESUME,
    RETRY,
    STOP_CANCELLED,
    SUCCEED,
    TRANSITIONS,
    BulkResult,
    Claimed,
    Transition,
)
from jobs.core.transitions.operator import (
    BULK_BATCH,
    cancel,
    requeue,
    resolve_dead_letters,
    resolve_dead_letters_of_jobs,
    resume,
)
from jobs.core.transitions.steps import (
    MAX_PROGRESS,
    MAX_PROGRESS_MESSAGE,
    checkpoint_step,
    fail_step,
    progress_values,
    start_step,
    step_progress,
)
from jobs.exceptions import LostOwnership

__all__ = [
    "ALLOWED", "BULK_BATCH", "BURY", "CANCEL", "CLAIM", "LAST_ERROR_CHARS", "MAX_PROGRESS",
    "MAX_PROGRESS_MESSAGE", "RELEASE", "REQUEUE", "RESUME", "RETRY", "STOP_CANCELLED",
    "SUCCEED", "TRANSITIONS", "BulkResult", "Claimed", "ErrorInfo", "LostOwnership",
    "Transition", "cancel", "checkpoint_step", "claim", "class_path",
    "fail", "fail_step", "progress_values", "release", "renew_lease", "requeue",
    "resolve_dead_letters", "resolve_dead_letters_of_jobs", "resume", "start_step",
    "step_progress", "stop_cancelled", "succeed",
]
