"""Background jobs that never lie. Public API: `task`, `enqueue`, `PermanentError`.

Import from `jobs.api` inside app code that loads before the app registry is
ready; this package re-exports lazily to stay import-safe.
"""

from typing import Any

__all__ = ["task", "enqueue", "PermanentError", "Backoff"]


def __getattr__(name: str) -> Any:
    if name in {"task", "enqueue"}:
        from jobs import api

        return getattr(api, name)
    if name == "PermanentError":
        from jobs.exceptions import PermanentError

        return PermanentError
    if name == "Backoff":
        from jobs.retry import Backoff

        return Backoff
    raise AttributeError(name)
