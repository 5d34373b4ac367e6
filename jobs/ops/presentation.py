"""How jobs are shown, the same on every screen (admin and dashboard)."""

from __future__ import annotations

from typing import Any

from jobs.models import JobStatus, Step, StepStatus

# One palette for every screen.
STATUS_COLOURS = {
    JobStatus.QUEUED: "#6b7280",
    JobStatus.RUNNING: "#2563eb",
    JobStatus.RETRYING: "#d97706",
    JobStatus.SUCCEEDED: "#16a34a",
    JobStatus.DEAD: "#dc2626",
    JobStatus.CANCELLED: "#9ca3af",
}


def job_progress(steps: list[Step]) -> dict[str, Any]:
    """Overall progress: steps done of planned, plus the running step's own progress."""
    planned = len(steps)
    done = sum(1 for s in steps if s.status == StepStatus.SUCCEEDED)
    current = next((s for s in steps if s.status == StepStatus.RUNNING), None)
    fraction = (done + ((current.progress_fraction or 0) if current else 0)) / planned \
        if planned else None
    return {
        "steps_done": done,
        "steps_planned": planned,
        "fraction": round(fraction, 4) if fraction is not None else None,
        "current_step": current.name if current else None,
        "current_progress": (
            {"current": current.progress_current, "total": current.progress_total,
             "message": current.progress_message}
            if current and current.progress_total is not None else None
        ),
    }
