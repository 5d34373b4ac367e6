"""Errors callers can catch by kind. All raised at the point of the mistake."""


class JobsError(Exception):
    """Base class for every error this package raises on purpose."""


class UnknownTaskError(JobsError, LookupError):
    """The task name is not in the registry (typo, or its module never imported)."""


class InvalidJobArguments(JobsError, TypeError):
    """Arguments do not fit the task's signature or are not JSON-serializable."""


class InvalidJobOption(JobsError, ValueError):
    """A queue, priority, run_after or max_attempts value is out of bounds."""


class TaskRegistrationError(JobsError):
    """A task cannot be registered as declared (name clash, reserved parameter)."""


class IllegalTransition(JobsError):
    """The job is not in a state from which the requested change is allowed."""


class PermanentError(Exception):
    """Raise from a task to skip the remaining retries: the job goes straight to dead.

    For failures a retry cannot fix: a malformed payload, a missing record.
    """
