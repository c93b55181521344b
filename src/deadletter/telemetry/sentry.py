"""Failed attempts sent to Sentry, with the job's context and the failure group's
fingerprint, secrets redacted as in the database (`[sentry]`, docs/operations.md).

A client of its own, not `sentry_sdk.init`: the tasks' own code may report to its own
project through the global client, and deadletter's reports stay out of it.
"""

from __future__ import annotations

from typing import Any

from deadletter.config import SentrySettings
from deadletter.dlq.fingerprint import fingerprint
from deadletter.errors import ConfigError
from deadletter.model import LeasedJob
from deadletter.redact import Redactor
from deadletter.store.base import DeadLettered, Retrying
from deadletter.worker.retry import Failure

REPORTS = ("attempts", "dead_letters")
FLUSH_SECONDS = 5.0


class SentryReporter:
    """An `AttemptObserver` (worker/observe.py) sending to the DSN of `settings`."""

    def __init__(self, settings: SentrySettings, redactor: Redactor) -> None:
        if settings.report not in REPORTS:
            raise ConfigError(
                f"[sentry] report must be one of {', '.join(REPORTS)}, got {settings.report!r}"
            )
        try:
            import sentry_sdk
        except ImportError as exc:
            raise ConfigError(
                "[sentry] dsn is set but sentry-sdk is not installed:"
                " pip install 'deadletter[sentry]'"
            ) from exc
        self._only_dead = settings.report == "dead_letters"
        self._redactor = redactor
        self._client = sentry_sdk.Client(
            dsn=settings.dsn,
            environment=settings.environment or None,
            default_integrations=False,
            include_local_variables=False,
            before_send=self._redact,
        )

    def failed(self, job: LeasedJob, failure: Failure, outcome: Retrying | DeadLettered) -> None:
        if self._only_dead and not isinstance(outcome, DeadLettered):
            return
        import sentry_sdk
        from sentry_sdk.utils import event_from_exception

        attempt = outcome.attempt
        scope = sentry_sdk.Scope(client=self._client)
        scope.set_tag("deadletter.queue", job.queue)
        scope.set_tag("deadletter.task", job.task)
        scope.set_tag("deadletter.outcome", _outcome(outcome))
        scope.set_context(
            "job",
            {"id": job.id, "task": job.task, "queue": job.queue, "attempt": job.attempt},
        )
        # The key the DLQ handler groups this failure under (dlq/fingerprint.py): one
        # issue in Sentry per error group of deadletter.
        scope.fingerprint = [
            fingerprint(attempt.error_type or "", attempt.message or "", attempt.traceback)
        ]
        # Through this client, not the scope's: a scope captures with the current one.
        event, hint = event_from_exception(failure.exception, self._client.options)
        self._client.capture_event(event, hint=hint, scope=scope)

    def close(self) -> None:
        self._client.flush(timeout=FLUSH_SECONDS)

    def _redact(self, event: Any, hint: Any) -> Any:
        """Every string of the event, as the store's copy of the attempt is redacted."""
        return self._redactor.redact_value(event)


def _outcome(outcome: Retrying | DeadLettered) -> str:
    return "dead_lettered" if isinstance(outcome, DeadLettered) else "retrying"
