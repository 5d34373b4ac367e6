"""Signals a project can listen to, sent by this package (see docs/operations.md).

    job_enqueued(sender=Job, job)                 after the INSERT, in the caller's transaction
    job_started(sender=Job, job, attempt)         after a worker won the claim
    job_finished(sender=Job, job, attempt, status, error)
                                                  once an attempt's outcome, or a cancel,
                                                  is committed

`job_finished` is sent once for every end of an attempt, whoever wrote it (the
worker, the reaper for a lost worker), and for a queued or retrying job an
operator cancelled (`attempt` None); by jobs.core.transitions, the one module
that writes a status. `status` is the job's status it left (succeeded,
retrying, dead, cancelled, queued); `error` the exception that ended the
attempt (None when it succeeded): the task's own, or one of jobs.exceptions
(WorkerLost, WorkerShutdown, JobCancelled). A worker sends it inside the
`except` block that caught the task's error, so that error is also the current
exception. Receivers run in the process that sent the signal; one that raises
is logged and ignored, so a receiver cannot change what happened.
"""

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("jobs.signals")

job_enqueued = Signal()
job_started = Signal()
job_finished = Signal()



def send(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Send to every receiver; log, never raise, what a receiver raised."""
    if not signal.receivers:
        return
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("signal receiver %r raised", receiver, exc_info=result)
