"""A step as every screen shows it: its time, its progress, and the attempts that ran it.

One source for a step's time: the Step row keeps the times of its latest run
(`started_at`, `finished_at`), so the step's heading, its latest run in the
table of attempts, and the admin's step pages all read `step_time` of that row.
An attempt's own times span the whole attempt (every step it ran, and the code
between them); shown beside a step they read as the step's and disagree with
it, so a step's table shows what each attempt did *in this step* instead.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from jobs.models import Attempt, AttemptStatus, Step, StepStatus
from jobs.ops.presentation import duration_text

NOT_STARTED = "not started"


def step_time(step: Step, now: datetime) -> str:
    """How long the step's latest run took: '4.2 s'; '12 s so far' while it runs;
    'not started' for a pending step (never a bare dash that reads as 'zero')."""
    if step.status == StepStatus.PENDING or step.started_at is None:
        return NOT_STARTED
    if step.status == StepStatus.RUNNING:
        return f"{duration_text(now - step.started_at)} so far"
    return duration_text(step.duration)


def progress_text(current: int | None, total: int | None, message: str) -> str:
    """'700/1200 row 700': the figures, then the task's message.

    A message that already says the figures ("documents 8000/40000") is shown
    alone rather than after them again ("8000/40000 documents 8000/40000").
    No total: the message alone, or '' when there is none.
    """
    message = " ".join((message or "").split())
    if total is None:
        return message
    figures = f"{current or 0}/{total}"
    said = re.search(rf"(?<!\d){current or 0}\s*/\s*{total}(?!\d)", message)
    if said:
        return message
    return f"{figures} {message}".strip()


def attempts_by_step(steps: list[Step], attempts: list[Attempt]) -> dict[int, list[Attempt]]:
    """The job's attempts that ran each step, newest first: those that ended in it
    (Attempt.step) and the one that ran its latest run (Step.attempt_number), which
    is the running attempt while the step runs. An attempt that completed several
    steps is listed under each of them."""
    by_number = {a.number: a for a in attempts}
    out: dict[int, list[Attempt]] = defaultdict(list)
    for a in attempts:
        if a.step_id is not None:
            out[a.step_id].append(a)
    for s in steps:
        latest = by_number.get(s.attempt_number) if s.attempt_number else None
        if latest is not None and latest not in out[s.pk]:
            out[s.pk].append(latest)
            out[s.pk].sort(key=lambda a: -a.number)
    return out


@dataclass(frozen=True)
class StepRun:
    """One attempt's part in one step, as the step's table lists it."""

    attempt: Attempt
    status: str  # a StepStatus for the latest run, the attempt's AttemptStatus otherwise
    kind: str  # "step" or "attempt": which labels `status` takes (presentation.status_info)
    started_at: datetime | None
    finished_at: datetime | None
    took: str
    ended_here: bool  # the attempt ended in this step: its error is this step's

    @property
    def latest(self) -> bool:
        return self.kind == "step"


def step_runs(step: Step, attempts: list[Attempt], now: datetime) -> list[StepRun]:
    """The rows of a step's table of attempts, newest first.

    The run the Step row records (its latest, by `Step.attempt_number`) takes the
    step's status and times, exactly what the step's heading says. Earlier runs
    left only their attempt's end (a step's times are overwritten when it starts
    again): the time the attempt ended in this step, and its outcome.
    """
    rows = []
    for a in attempts:
        if a.number == step.attempt_number and step.status != StepStatus.PENDING:
            rows.append(StepRun(a, step.status, "step", step.started_at, step.finished_at,
                                step_time(step, now), a.step_id == step.pk))
        else:
            ended = a.finished_at if a.status != AttemptStatus.RUNNING else None
            rows.append(StepRun(a, a.status, "attempt", None, ended, "",
                                a.step_id == step.pk))
    return rows
