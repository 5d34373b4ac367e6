"""An error as a transition stores it: always storable, however hostile the exception."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs import conf
from jobs.core.serialization import describe, storable_text
from jobs.core.tracebacks import task_traceback

LAST_ERROR_CHARS = 300  # Job.last_error's length


@dataclass(frozen=True)
class ErrorInfo:
    """An error as it will be stored: always storable, however hostile the exception.

    NULs and lone surrogates cannot reach the database, a message or traceback
    is cut to its limit with a marker, and an exception whose __str__ raises is
    named by a placeholder: a failure must never turn into "worker lost"
    because its own description could not be written.

    `error_class` is an importable path (`class_path`). `exception` is the error
    itself, never stored: `job_finished` carries it to receivers in this process
    (jobs.backends logs it with its traceback, as the framework's handler expects).
    """

    error_class: str
    message: str
    traceback: str = ""
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        js = conf.get()
        object.__setattr__(self, "error_class", storable_text(self.error_class, 255))
        object.__setattr__(self, "message", storable_text(self.message, js.max_error_chars))
        object.__setattr__(self, "traceback",
                           storable_text(self.traceback, js.max_traceback_chars))

    @classmethod
    def from_exception(cls, exc: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
        """`exc` as stored; without its traceback for an error the engine made up to
        say what happened (a lost worker has no stack to show)."""
        return cls(error_class=class_path(type(exc)), message=describe(exc),
                   traceback=task_traceback(exc) if with_traceback else "", exception=exc)

    @property
    def summary(self) -> str:
        return f"{self.error_class}: {self.message}" if self.message else self.error_class

    @property
    def preview(self) -> str:
        """The summary on one line, short enough for a list (Job.last_error)."""
        return storable_text(" ".join(self.summary.split()), LAST_ERROR_CHARS)


def class_path(kind: type[BaseException]) -> str:
    """Where `kind` is imported from: a builtin by its bare name ("ValueError"), anything
    else by its dotted path. Engine errors live in jobs.exceptions, so every path the
    engine records imports (a task's own class imports if its module defines it at
    module level)."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


# Paths an attempt stored before the engine's errors moved to jobs.exceptions: bare names
# that are no builtins.
_FORMER_PATHS = {
    "WorkerLost": "jobs.exceptions.WorkerLost",
    "WorkerShutdown": "jobs.exceptions.WorkerShutdown",
    "Cancelled": "jobs.exceptions.JobCancelled",
}


def importable_path(error_class: str) -> str:
    """A stored `error_class` as an importable path: builtins are stored by their bare
    name, and a few engine errors were, before they moved to jobs.exceptions."""
    if "." in error_class:
        return error_class
    return _FORMER_PATHS.get(error_class, f"builtins.{error_class}")
