"""OpenTelemetry: a job continues the trace of the code that enqueued it, and each
attempt is a span of its own under that parent."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs import enqueue
from jobs.models import JobStatus
from jobs.worker.runner import run_job

pytestmark = pytest.mark.django_db

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans():
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # set once per process
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def test_an_attempt_is_a_child_span_of_the_enqueuing_span(spans):
    with trace.get_tracer("test").start_as_current_span("POST /reports") as parent:
        job = enqueue("tests.fail_until", 2)
    context = parent.get_span_context()
    assert job.traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")

    assert run_job(job.pk) == JobStatus.RETRYING
    job.refresh_from_db()
    job.run_after = job.created_at
    job.save(update_fields=["run_after"])
    assert run_job(job.pk) == JobStatus.SUCCEEDED

    attempts = [s for s in spans.get_finished_spans() if s.name == "job tests.fail_until"]
    assert [s.attributes["job.attempt"] for s in attempts] == [1, 2]
    assert [s.attributes["job.outcome"] for s in attempts] == ["retrying", "succeeded"]
    for span in attempts:
        assert span.parent.span_id == context.span_id
        assert span.context.trace_id == context.trace_id
        assert span.attributes["job.id"] == str(job.pk)


def test_without_an_active_trace_nothing_is_stored(spans):
    job = enqueue("tests.add", 1, b=2)
    assert job.traceparent == ""
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    (span,) = [s for s in spans.get_finished_spans() if s.name == "job tests.add"]
    assert span.parent is None  # a root span of its own
