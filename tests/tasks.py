"""Tasks the test suite enqueues. Real qcluster processes import this module
through JOBS_TASK_MODULES=tests.tasks (see tests/cluster.py)."""

import time

from demo.models import Effect
from jobs.api import task
from jobs.context import current_job
from jobs.exceptions import PermanentError
from jobs.retry import Backoff

FAST = Backoff(base=1.0, factor=1.0, cap=1.0)


@task(name="tests.add")
def add(a: int, b: int) -> int:
    return a + b


@task(name="tests.noop")
def noop() -> None:
    return None


@task(name="tests.write_effect")
def write_effect(key: str) -> str:
    ctx = current_job()
    Effect.objects.create(key=key, job_id=ctx.job_id if ctx else None)
    return key


@task(name="tests.write_then_fail", max_attempts=1)
def write_then_fail(key: str) -> None:
    Effect.objects.create(key=key)
    raise RuntimeError(f"failed after writing {key}")


@task(name="tests.write_then_fail_non_atomic", max_attempts=1, atomic=False)
def write_then_fail_non_atomic(key: str) -> None:
    Effect.objects.create(key=key)
    raise RuntimeError(f"failed after writing {key}")


@task(name="tests.fail_always", max_attempts=3, backoff=FAST)
def fail_always(message: str) -> None:
    raise RuntimeError(message)


@task(name="tests.fail_permanent", max_attempts=5)
def fail_permanent(message: str) -> None:
    raise PermanentError(message)


@task(name="tests.fail_until", max_attempts=5, backoff=FAST)
def fail_until(succeed_on: int) -> int:
    ctx = current_job()
    if ctx.attempt_count < succeed_on:
        raise ConnectionError(f"attempt {ctx.attempt_count} fails on purpose")
    return ctx.attempt_count


@task(name="tests.unserializable_result")
def unserializable_result(key: str) -> object:
    Effect.objects.create(key=key)
    return object()


@task(name="tests.sleep", atomic=False)
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


# --- crash safety ------------------------------------------------------------


@task(name="tests.slow_effect", max_attempts=25, backoff=Backoff(base=0.2, factor=1.5, cap=1.0))
def slow_effect(key: str, seconds: float) -> str:
    """Chaos workload: work for a while, then write the business row in the job's transaction."""
    time.sleep(seconds)
    ctx = current_job()
    Effect.objects.create(key=key, job_id=ctx.job_id if ctx else None)
    return key


@task(name="tests.times_out", timeout=1, max_attempts=2, backoff=FAST)
def times_out(seconds: float) -> None:
    time.sleep(seconds)


@task(name="tests.cooperative", max_attempts=1, atomic=False)
def cooperative(seconds: float, key: str = "") -> str:
    """Checks for a cancel request between chunks of work, as long tasks should."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current_job().raise_if_cancelled()
        time.sleep(0.02)
    if key:
        Effect.objects.create(key=key)
    return "finished"


@task(name="tests.send_welcome_email")
def send_welcome_email(user_id: int) -> bool:
    """The README's example: the effect happens once however often the job runs."""
    from jobs.effects import once

    if once(f"welcome-email:{user_id}"):
        Effect.objects.create(key=f"welcome-email-sent:{user_id}")
        return True
    return False
