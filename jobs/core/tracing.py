"""OpenTelemetry, when installed (the `tracing` extra): a job continues the trace of
the request that enqueued it.

`enqueue()` stores the current W3C `traceparent` on the job; the worker runs each
attempt in a span that is a child of it, named `job <task>`, with the job id,
task and attempt number as attributes and the outcome set when it ends. Without
OpenTelemetry, or with no active trace, both are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import trace
    from opentelemetry.propagate import extract, inject
except ImportError:  # optional dependency
    trace = None

MAX_TRACEPARENT = 128


def current_traceparent() -> str:
    """The active span's traceparent header, or "" when nothing is traced."""
    if trace is None:
        return ""
    carrier: dict[str, str] = {}
    inject(carrier)
    value = carrier.get("traceparent", "")
    return value if len(value) <= MAX_TRACEPARENT else ""


@contextmanager
def attempt_span(task: str, job_id: Any, attempt: int, traceparent: str) -> Iterator[Any]:
    """Run an attempt inside a span that continues the enqueuer's trace."""
    if trace is None:
        yield None
        return
    parent = extract({"traceparent": traceparent}) if traceparent else None
    tracer = trace.get_tracer("jobs")
    with tracer.start_as_current_span(
        f"job {task}", context=parent, kind=trace.SpanKind.CONSUMER,
        attributes={"job.id": str(job_id), "job.task": task, "job.attempt": attempt},
    ) as span:
        yield span
