"""Background jobs that never lie.

    from jobs import task, enqueue, current_job, once, PermanentError, Backoff

The names are resolved on first use (PEP 562): Django imports this package
while it loads INSTALLED_APPS, before models may be imported, so nothing
here may import a model eagerly.
"""

from importlib import import_module
from typing import Any

_PUBLIC = {
    "task": "jobs.core.registry",
    "enqueue": "jobs.core.enqueue",
    "current_job": "jobs.core.context",
    "once": "jobs.core.effects",
    "Backoff": "jobs.core.retry",
    "PermanentError": "jobs.exceptions",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'jobs' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
