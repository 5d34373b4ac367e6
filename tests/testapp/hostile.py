"""Tasks that fail in ways a careless or hostile task can: their failures must still be
recorded as what happened. Imported by the tests that use them, and by real clusters
through JOBS_TASK_MODULES=tests.testapp.hostile."""

import sys

from jobs import task


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


MESSAGES = {
    "surrogate": "bad \ud800 text",
    "nul": "a\x00b",
    "huge": "x" * 1_000_000,
}


@task(name="hostile.raise_text", max_attempts=1)
def raise_text(kind: str) -> None:
    raise ValueError(MESSAGES[kind])


@task(name="hostile.unprintable", max_attempts=1)
def unprintable() -> None:
    raise Unprintable()


@task(name="hostile.exit", max_attempts=1)
def exit_task(code: int = 3) -> None:
    sys.exit(code)


@task(name="hostile.keyboard_interrupt", max_attempts=1)
def keyboard_interrupt() -> None:
    raise KeyboardInterrupt()


@task(name="hostile.huge_result", max_attempts=1)
def huge_result() -> str:
    return "r" * 2_000_000
