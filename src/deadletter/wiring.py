"""Composition of the dead-letter side of an app: handler, blobs, event log, delivery.

With `app.py` this is the composition root: the only place that builds the pipeline
(`dlq/`), delivery (`notify/`) and the threshold watch (`ops/`) from settings and
hands them to a worker. Nothing below imports it (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deadletter.classify import Rule
from deadletter.config import Settings
from deadletter.dlq.handler import DeadLetterHandler
from deadletter.errors import ConfigError
from deadletter.events import EventLog
from deadletter.forensics import open_blob_store
from deadletter.forensics.base import BlobStore
from deadletter.forensics.filesystem import FilesystemBlobStore
from deadletter.model import ErrorClass, Route
from deadletter.notify.dispatch import Dispatcher
from deadletter.ops.thresholds import ThresholdWatch
from deadletter.redact import Redactors
from deadletter.store.base import Store
from deadletter.worker.loop import Periodic
from deadletter.worker.observe import AttemptObserver

if TYPE_CHECKING:
    from deadletter.telemetry.otel import Tracing

DELIVERY_INTERVAL = 2.0
# How often the worker asks the handler and the dispatcher to probe a component found
# down; the breaker itself spaces the probes out with its backoff.
PROBE_INTERVAL = 0.25


@dataclass
class DlqComponents:
    handler: DeadLetterHandler
    blobs: BlobStore
    events: EventLog
    dispatcher: Dispatcher
    thresholds: ThresholdWatch

    @classmethod
    def build(
        cls, settings: Settings, store: Store, rules: Sequence[Rule], redactors: Redactors
    ) -> DlqComponents:
        blobs = open_blob_store(settings.blob_url, endpoint_url=settings.s3_endpoint_url or None)
        if isinstance(blobs, FilesystemBlobStore):
            # The embedded default sets itself up; a bucket is created by `deadletter deploy`.
            blobs.ensure()
        events = EventLog(Path(settings.dlq.log_file), redactors.pii)
        handler = DeadLetterHandler(
            store=store,
            blobs=blobs,
            rules=rules,
            redactors=redactors,
            events=events,
            routes=routes_from(settings),
            alert_window=settings.dlq.alert_window_seconds,
        )
        dispatcher = Dispatcher.build(store, settings.dlq, events, redactors.pii)
        return cls(handler, blobs, events, dispatcher, ThresholdWatch(store, settings.thresholds))

    def periodic(self) -> list[Periodic]:
        """What a worker handling dead letters also does, off the job path."""
        return [
            (DELIVERY_INTERVAL, self.dispatcher.deliver_due),
            (self.thresholds.interval, self.thresholds),
            (PROBE_INTERVAL, self.handler.probe),
            (PROBE_INTERVAL, self.dispatcher.probe),
        ]

    def close(self) -> None:
        self.events.close()


def observers_from(settings: Settings, redactors: Redactors) -> list[AttemptObserver]:
    """What a worker tells of failed attempts, from settings: Sentry when `[sentry] dsn`
    is set (its module, and sentry-sdk, are imported only then)."""
    if not settings.sentry.dsn:
        return []
    from deadletter.telemetry.sentry import SentryReporter

    return [SentryReporter(settings.sentry, redactors.secrets)]


def build_tracing() -> Tracing:
    """OpenTelemetry's halves of a job's trace, for `[otel] enabled` (its module, and
    opentelemetry, are imported only then)."""
    from deadletter.telemetry.otel import Tracing

    return Tracing()


def routes_from(settings: Settings) -> dict[ErrorClass, Route]:
    dlq = settings.dlq
    chosen = {
        ErrorClass.RECOVERABLE: dlq.route_recoverable,
        ErrorClass.USER_ERROR: dlq.route_user_error,
        ErrorClass.SYSTEM_ERROR: dlq.route_system_error,
        ErrorClass.UNKNOWN: dlq.route_unknown,
    }
    try:
        return {error_class: Route(route) for error_class, route in chosen.items()}
    except ValueError as exc:
        known = ", ".join(r.value for r in Route)
        raise ConfigError(f"[dlq] route_*: {exc}; routes are: {known}") from exc
