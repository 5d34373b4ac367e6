"""Tasks the test suite enqueues: the test app's `tasks` module, so real qcluster
processes started with tests.settings register them too (see tests/cluster.py)."""

import threading
import time

from django.db import transaction

from jobs import Backoff, PermanentError, current_job, task
from tests.testapp.models import Effect

FAST = Backoff(base=1.0, factor=1.0, cap=1.0)


# What tests.on_commit_only's callback saw of its own job.
ON_COMMIT_SAW: list[str] = []


@task(name="tests.on_commit_only")
def on_commit_only() -> None:
    """Touches no data; only asks to be called back when its transaction commits."""
    from jobs.models import Job

    job_id = current_job().job_id
    transaction.on_commit(
        lambda: ON_COMMIT_SAW.append(Job.objects.values_list("status", flat=True).get(pk=job_id))
    )


@task(name="tests.logs_a_line")
def logs_a_line(word: str) -> None:
    import logging

    logging.getLogger("some.library").warning("task says %s", word)


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


def _lookup(table: dict, key: str) -> str:
    return table[key]


@task(name="tests.fail_chained", max_attempts=1)
def fail_chained(key: str) -> None:
    """Fails with a cause: a KeyError re-raised as the task's own error."""
    try:
        _lookup({}, key)
    except KeyError as exc:
        raise LookupError(f"no price for {key}") from exc


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


@task(name="tests.hold_key", max_attempts=10, backoff=Backoff(base=0.5, factor=1.0, cap=0.5))
def hold_key(key: str, flag_dir: str, cooperative: bool) -> dict:
    """The partition workload (tests/integration/test_partition.py): takes a once() key
    and writes its effect; on its first attempt it then keeps its transaction (and the
    key) open, saying so with a `<key>.held` file, until the test drops a `release`
    file, and writes one more row, `late:<key>`. A cooperative run checks for loss
    while it waits; the other never does, and its late row shows whether a cut-off
    worker's writes could still commit."""
    from pathlib import Path

    from jobs import once

    ctx = current_job()
    did = once(key)
    if did:
        Effect.objects.create(key=key, job_id=ctx.job_id)
    if ctx.attempt_number == 1:
        Path(flag_dir, f"{key}.held").touch()
        release = Path(flag_dir, "release")
        while not release.exists():
            if cooperative:
                ctx.raise_if_cancelled()
            time.sleep(0.05)
        Effect.objects.create(key=f"late:{key}", job_id=ctx.job_id)
    return {"attempt": ctx.attempt_number, "did": did}


@task(name="tests.send_welcome_email")
def send_welcome_email(user_id: int) -> bool:
    """The README's example: the effect happens once however often the job runs."""
    from jobs import once

    if once(f"welcome-email:{user_id}"):
        Effect.objects.create(key=f"welcome-email-sent:{user_id}")
        return True
    return False


# --- durable steps -------------------------------------------------------------


def _record(step: str, value=None):
    ctx = current_job()
    Effect.objects.create(key=f"{ctx.job_id}:{step}:{ctx.attempt_number}")
    return value


def _flaky_step(fail_on_attempts: list[int], value):
    ctx = current_job()
    Effect.objects.create(key=f"{ctx.job_id}:s3:{ctx.attempt_number}")  # rolled back on failure
    if ctx.attempt_number in fail_on_attempts:
        raise ConnectionError(f"step 3 fails on attempt {ctx.attempt_number}")
    return value


@task(name="tests.five_steps", max_attempts=3, backoff=FAST,
      steps=["s1", "s2", "s3", "s4", "s5"])
def five_steps(fail_on_attempts: list[int]) -> int:
    ctx = current_job()
    a = ctx.step("s1", _record, "s1", 1)
    b = ctx.step("s2", _record, "s2", a + 1)  # a later step receives an earlier result
    c = ctx.step("s3", _flaky_step, fail_on_attempts, b + 1)
    d = ctx.step("s4", _record, "s4", c + 1)
    return ctx.step("s5", _record, "s5", d + 1)


def _summarize(text: str, limits: dict) -> str:
    if len(text) > limits["max_chars"]:
        raise ValueError(f"text of {len(text)} chars exceeds max_chars={limits['max_chars']}")
    return text.upper()


@task(name="tests.limited", max_attempts=1, steps=["fetch", "summarize", "store"])
def limited(text: str) -> str:
    ctx = current_job()
    fetched = ctx.step("fetch", _record, "fetch", text)
    summary = ctx.step("summarize", _summarize, fetched, limits={"max_chars": 5})
    return ctx.step("store", _record, "store", summary)


@task(name="tests.duplicate_step", atomic=False)
def duplicate_step() -> None:
    ctx = current_job()
    for _ in range(2):
        ctx.step("same", _record, "same")


@task(name="tests.step_in_atomic")
def step_in_atomic() -> None:
    current_job().step("a", _record, "a")


def _count_up(n: int) -> int:
    ctx = current_job()
    for i in range(1, n + 1):
        ctx.progress(i, n, f"item {i}")
    return n


@task(name="tests.progress", atomic=False)
def progress(n: int) -> int:
    return current_job().step("count", _count_up, n)


@task(name="tests.step_limits", max_attempts=5, backoff=FAST, atomic=False)
def step_limits() -> None:
    ctx = current_job()
    ctx.step("slow", time.sleep, 3, timeout=1)


@task(name="tests.step_budget", max_attempts=5, backoff=FAST, atomic=False)
def step_budget() -> None:
    current_job().step("fragile", _flaky_step, [1, 2, 3, 4, 5], None, max_attempts=2)


@task(name="tests.crash_in_step2", max_attempts=3, backoff=FAST, steps=["one", "two"])
def crash_in_step2(seconds: float) -> str:
    ctx = current_job()
    ctx.step("one", _record, "one", "one")

    def two():
        if current_job().attempt_number == 1:
            time.sleep(seconds)  # the test kill -9s the worker here
        return _record("two", "two")

    return ctx.step("two", two)


# Django-standard tasks register themselves (jobs.backends) when their module loads;
# importing it here loads it in every process that loads this app's tasks.
from tests.testapp import standard_tasks  # noqa: E402, F401

PROGRESS_REPORTED = threading.Event()
MAY_FINISH = threading.Event()


def _report_then_wait() -> int:
    ctx = current_job()
    ctx.progress(3, 10, "three of ten")
    PROGRESS_REPORTED.set()
    MAY_FINISH.wait(10)
    ctx.progress(10, 10, "done")
    return 10


@task(name="tests.progress_then_wait", atomic=False)
def progress_then_wait() -> int:
    """Reports progress, then waits inside its step until the test has looked."""
    return current_job().step("wait", _report_then_wait)


@task(name="tests.raises", max_attempts=1)
def raises(class_path: str) -> None:
    """Fails with the exception class at `class_path` (one the engine itself raises)."""
    from django.utils.module_loading import import_string

    raise import_string(class_path)("raised on purpose")
