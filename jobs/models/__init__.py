"""The database is the source of truth. Models import nothing of `jobs` but
their choices and the engine's database alias (`jobs.database`), so every other
layer can build on them."""

from jobs.models.choices import (
    RUNNABLE_STATUSES,
    AttemptStatus,
    JobStatus,
    MisfirePolicy,
    OverlapPolicy,
    StepStatus,
)
from jobs.models.cluster import Cluster
from jobs.models.console import OperationStatus, OperatorAction, QueuePause
from jobs.models.job import Attempt, Job, Step
from jobs.models.records import DeadLetter, OperationKey
from jobs.models.schedule import Schedule

__all__ = [
    "RUNNABLE_STATUSES", "AttemptStatus", "JobStatus", "MisfirePolicy", "OverlapPolicy",
    "StepStatus", "Attempt", "Cluster", "Job", "Step", "DeadLetter", "OperationKey",
    "Schedule", "OperationStatus", "OperatorAction", "QueuePause",
]
