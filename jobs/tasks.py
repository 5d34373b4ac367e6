"""Built-in maintenance tasks, installed as schedules by `manage.py install_schedules`.

Autodiscovered like every app's `tasks` module, so clusters always know them.
"""

from __future__ import annotations

from jobs.core.registry import task
from jobs.ops import bulk
from jobs.scheduling import builtins


# Not atomic: each purge batch commits on its own (see builtins.purge_finished).
@task(name="jobs.purge_finished", atomic=False, timeout=1800, max_attempts=3)
def purge_finished(days: int | None = None) -> int:
    """Delete finished jobs older than JOBS['RETENTION_DAYS'] (or `days`)."""
    return builtins.purge_finished(days)


@task(name="jobs.dead_letter_alert", max_attempts=3)
def dead_letter_alert(hours: float | None = None) -> int:
    """Mail the admins, once a day, about old unresolved dead letters."""
    return builtins.alert_dead_letters(hours)


# Not atomic: each batch commits with its progress (see jobs.ops.bulk.run), so a
# retry continues after the last committed batch. However its job ends (an error
# on the last attempt, a timeout, a cancel, a lost worker), the operation's row
# ends with it: jobs.ops.bulk.settle, from the job_finished signal or when read.
@task(name=bulk.TASK, atomic=False, timeout=1800, max_attempts=5)
def bulk_action(operation_id: int) -> dict:
    """Carry out an operator's action on every job matching a filter."""
    return bulk.run(operation_id)
