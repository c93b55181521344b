"""OpenTelemetry traces (`[otel] enabled`, docs/operations.md): `enqueue` stores the
caller's trace context in the job's labels (W3C `traceparent`, `tracestate`), and each
run of the job is a span, child of that context, with the job's id, task, queue, attempt
and outcome, the exception recorded. Spans go to whatever tracer provider the process
set up (`opentelemetry.trace.set_tracer_provider`); this module only uses the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deadletter.errors import ConfigError
from deadletter.model import LeasedJob

TRACER = "deadletter"


class Tracing:
    """The producer's and the worker's halves of a job's trace."""

    def __init__(self) -> None:
        try:
            from opentelemetry import propagate, trace
        except ImportError as exc:
            raise ConfigError(
                "[otel] enabled is set but opentelemetry is not installed:"
                " pip install 'deadletter[otel]'"
            ) from exc
        self._propagate: Any = propagate
        self._trace: Any = trace

    def carry(self, labels: dict[str, str]) -> dict[str, str]:
        """`labels` with the current trace context, if there is one, added."""
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier)
        return {**labels, **carrier} if carrier else labels

    @contextmanager
    def run(self, job: LeasedJob) -> Iterator[None]:
        """A span around one run of `job`, current while it runs: the task's own spans
        are its children. An exception is recorded, and raised on."""
        parent = self._propagate.extract(job.labels)
        tracer = self._trace.get_tracer(TRACER)
        with tracer.start_as_current_span(
            f"run {job.task}",
            context=parent,
            kind=self._trace.SpanKind.CONSUMER,
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "deadletter.job.id": job.id,
                "deadletter.job.task": job.task,
                "deadletter.job.queue": job.queue,
                "deadletter.job.attempt": job.attempt,
            },
        ) as span:
            try:
                yield
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(exc)))
                span.set_attribute("deadletter.job.outcome", "failed")
                raise
            span.set_attribute("deadletter.job.outcome", "succeeded")
