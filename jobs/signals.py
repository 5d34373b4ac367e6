"""Signals a project can listen to, sent by this package (see docs/operations.md).

    job_enqueued(sender=Job, job)                 after the INSERT, in the caller's transaction
    job_started(sender=Job, job, attempt)         after a worker won the claim
    job_finished(sender=Job, job, attempt, status)  after the attempt's outcome was written

`status` is the job's status the outcome left (succeeded, retrying, dead,
cancelled, queued). Receivers run in the process that sent the signal; one
that raises is logged and ignored, so a receiver cannot change what happened.
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
