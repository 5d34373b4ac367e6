"""Tasks written the way Django's task docs show, run by jobs.backends.JobsBackend.

On Django 6 the import is `from django.tasks import task`; on 5.2 the backport's
(`from django_tasks import task`): tests.framework picks the one Django has. Tasks that
ask for this backend's own options (max_attempts, backoff) are declared with
`jobs.backends.task`, as the README says, since Django 6.0's `@task` refuses them.
"""

from jobs import Backoff
from jobs.backends import task as jobs_task
from tests.framework import task

FAST = Backoff(base=0.2, factor=1.0, cap=0.2)


@task()
def multiply(a: int, b: int) -> int:
    return a * b


@jobs_task(queue_name="reports", priority=10, takes_context=True, max_attempts=3,
           backoff=FAST)
def flaky(context, succeed_on: int) -> dict:
    """Fails until its attempt number reaches `succeed_on`, then reports what it saw."""
    if context.attempt < succeed_on:
        raise ValueError(f"attempt {context.attempt} is too early")
    return {"attempt": context.attempt, "id": context.task_result.id}


@jobs_task(max_attempts=2, backoff=FAST)
def always_fails(message: str) -> None:
    raise LookupError(message)


@task()
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@task(takes_context=True)
def as_enqueued(context) -> dict:
    """What the running task's context says of the task: what .using() set."""
    t = context.task_result.task
    return {"priority": t.priority, "queue_name": t.queue_name,
            "run_after": t.run_after.isoformat() if t.run_after else None}


@task()
def keywords(**kwargs) -> dict:
    return kwargs


@jobs_task(max_attempts=1)
def returns_a_function():
    return len


@task()
def fails_once_asked() -> None:
    """Declared without max_attempts: one attempt, as the framework means it."""
    raise ValueError("no retries were asked for")


@task()
def takes_job_option_names(priority: int, queue: str = "", run_after: str = "") -> dict:
    """Parameters named like job options: the task's own, never the job's."""
    return {"priority": priority, "queue": queue, "run_after": run_after}


@task(takes_context=True)
def stops_when_cancelled(context) -> None:
    """Runs until an operator's cancel reaches it (jobs' safe point)."""
    import time

    from jobs import current_job

    for _ in range(200):
        current_job().raise_if_cancelled()
        time.sleep(0.05)
