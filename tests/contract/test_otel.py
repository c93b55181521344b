"""OpenTelemetry (`[otel] enabled`), with the SDK's in-memory exporter: the trace context
of `enqueue` reaches each run of the job through its stored labels, and each run is a
span with the job's id, task, queue, attempt and outcome, the exception recorded; on
each backend, with a real worker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deadletter.app import App
from deadletter.errors import ConfigError
from deadletter.worker.slots import current_job
from tests.support.one_queue import one_queue_settings

Q = "traced"
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # A process has one tracer provider, set once.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def make_app(store_url: str, tmp_path: Path, *, enabled: bool) -> App:
    settings = one_queue_settings(store_url, tmp_path, Q, otel={"enabled": enabled})
    app = App(settings)

    @app.task(queue=Q, name="mail.send")
    def send(to: str) -> None:
        with trace.get_tracer("tests").start_as_current_span("smtp"):
            if current_job.get().attempt == 1:
                raise ConnectionResetError(f"smtp server hung up on {to}")

    return app


def test_each_run_is_a_span_in_the_trace_of_its_enqueue(
    store_url: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    app = make_app(store_url, tmp_path, enabled=True)
    try:
        with trace.get_tracer("tests").start_as_current_span("checkout") as checkout:
            job_id = app.enqueue(app.tasks["mail.send"].spec("a@example.com"))
        app.worker(queues=[Q], dlq=False).run(burst=True)
    finally:
        app.close()
    found = spans.get_finished_spans()
    runs = [s for s in found if s.name == "run mail.send"]
    assert len(runs) == 2
    trace_id = checkout.get_span_context().trace_id
    for attempt, run in enumerate(runs, start=1):
        assert run.context is not None and run.context.trace_id == trace_id
        assert run.parent is not None
        assert run.parent.span_id == checkout.get_span_context().span_id
        assert run.kind is trace.SpanKind.CONSUMER
        assert run.attributes is not None
        assert run.attributes["deadletter.job.id"] == job_id
        assert run.attributes["deadletter.job.task"] == "mail.send"
        assert run.attributes["deadletter.job.queue"] == Q
        assert run.attributes["deadletter.job.attempt"] == attempt
    failed, succeeded = runs
    assert failed.attributes is not None and succeeded.attributes is not None
    assert failed.attributes["deadletter.job.outcome"] == "failed"
    assert failed.status.status_code is trace.StatusCode.ERROR
    [event] = failed.events
    assert event.name == "exception" and event.attributes is not None
    assert event.attributes["exception.type"] == "ConnectionResetError"
    assert succeeded.attributes["deadletter.job.outcome"] == "succeeded"
    assert succeeded.status.status_code is trace.StatusCode.UNSET
    # The task's own spans are children of its run.
    smtp = [s for s in found if s.name == "smtp"]
    assert [s.parent.span_id for s in smtp if s.parent] == [
        r.context.span_id for r in runs if r.context
    ]


def test_without_the_setting_nothing_is_traced_or_stored(
    store_url: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    app = make_app(store_url, tmp_path, enabled=False)
    try:
        with trace.get_tracer("tests").start_as_current_span("checkout"):
            job_id = app.enqueue(app.tasks["mail.send"].spec("a@example.com"))
        app.worker(queues=[Q], dlq=False).run(burst=True)
        job = app.store.get_job(job_id)
    finally:
        app.close()
    assert job is not None and job.labels == {}
    assert [s.name for s in spans.get_finished_spans()] == ["checkout", "smtp", "smtp"]


def test_enabled_without_the_extra_installed_is_an_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    from deadletter.telemetry.otel import Tracing

    with pytest.raises(ConfigError, match=r"pip install 'deadletter\[otel\]'"):
        Tracing()
