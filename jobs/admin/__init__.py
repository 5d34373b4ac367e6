"""The Django admin for jobs: one module per model admin, shared parts in `base`."""

from jobs.admin import (  # noqa: F401 - registers them
    attempt,
    console,
    deadletter,
    job,
    schedule,
    step,
)
