"""The Django admin for jobs: one module per model admin, shared parts in `base`."""

from jobs.admin import attempt, deadletter, job, schedule, step  # noqa: F401 - registers them
