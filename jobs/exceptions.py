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


class LostOwnership(IllegalTransition):
    """The attempt no longer owns its job (reaped, cancelled or finished elsewhere):
    whatever it wanted to write about the job or its steps is refused."""


class StepError(JobsError):
    """A step was declared or called in a way that cannot be checkpointed."""


class InvalidProgress(StepError, ValueError):
    """A progress report whose figures cannot be stored or make no sense (not an int,
    negative, past what the column holds, current above total); the message names
    the argument and the rule. Raised before anything is written."""


class DuplicateStepError(StepError, PermanentError):
    """A step name was used twice in one job: a bug no retry can fix."""


class NotInTransaction(JobsError, RuntimeError):
    """`once()` outside a transaction could record a key whose effect never commits."""


class InvalidOperationKey(JobsError, ValueError):
    """An operation key that cannot be stored exactly: not a str, empty, longer than
    the column holds, or holding a NUL or a lone surrogate. Raised before any SQL."""


class OperationKeyBusy(JobsError):
    """once(key) waited JOBS['ONCE_LOCK_TIMEOUT_SECONDS'] for another transaction that
    holds the same key and has not ended (a worker cut off mid-job, say). The attempt
    fails and is retried with backoff; by then that transaction has committed (the
    retry skips) or ended (the retry records the key)."""


class InvalidReservation(JobsError, ValueError):
    """A reservation asked for more longest-due jobs than it takes, or fewer than none."""


class UnstorableValue(JobsError, ValueError):
    """A value cannot be stored exactly as given (not plain JSON, bad text, too deep or
    too large); the message names where and the rule."""


class IdempotencyConflict(JobsError):
    """The idempotency key already belongs to a job of another task or with other
    arguments: returning that job would answer a different question."""

    def __init__(self, message: str, existing_job_id: object = None) -> None:
        super().__init__(message)
        self.existing_job_id = existing_job_id


class InvalidQueueName(InvalidJobOption):
    """A queue name that breaks the queue-name rule (jobs.core.queues.check_name):
    empty, padded, too long, or holding a character that is not printable. An
    InvalidJobOption too, since enqueue() and @task refuse it as an option."""


class InvalidTaskName(TaskRegistrationError, ValueError):
    """A task name that breaks the task-name rule (jobs.core.registry.check_task_name):
    the name travels in dashboard URLs, logs and command lines, so it is refused at
    registration rather than breaking every page that links to it."""


# --- What ended an attempt, as the engine records it --------------------------------
# Every class path the engine writes into an Attempt's or a Step's error_class is one of
# these, a builtin (a bare name such as "TimeoutError") or the task's own exception, so
# a reader (jobs.backends' TaskResult.errors, which imports it) can always import it.


class WorkerLost(JobsError):
    """The attempt's worker stopped heartbeating and its lease lapsed (killed, out of
    memory, its host gone): the reaper closes the attempt as lost with this error."""


class WorkerShutdown(JobsError):
    """The worker shut down before the job finished (the cluster's grace period ran out,
    or a second interrupt): the attempt is closed as interrupted and the job released,
    queued again for another worker."""


class JobCancelled(BaseException):
    """An operator cancelled the job: raised at the running task's next safe point, and
    the error of an attempt closed as cancelled. A BaseException so that a task's
    `except Exception` does not swallow it."""


class AttemptLost(BaseException):
    """The heartbeat found the job taken from this attempt (reaped while the worker
    was frozen, say). Raised at the next safe point: nothing this attempt would
    still write could count, so it stops instead of doing the work twice."""


class JobTimeout(BaseException):
    """The attempt overran its timeout. A BaseException so `except Exception` in
    task code cannot swallow it."""


class StepTimeout(JobTimeout):
    """One step overran its own timeout."""


class WorkerInterrupted(BaseException):
    """The worker is shutting down and the grace period is over."""
