"""What a caller may read: admins see failures as stored; everyone else sees them with
personal data (e-mail addresses, phone and card numbers, the app's `[redact_patterns]`)
redacted, as notifications and alerts are.

Only what jobs and people wrote is redacted: messages, tracebacks, payloads, labels,
reasons, notes and the forensic document. Ids, names of queues and tasks, classes and
times are the system's own, and must stay exact for a caller to act on them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar, cast

from deadletter.model import Attempt, Job
from deadletter.ops.audit import AuditEntry
from deadletter.ops.failures import FailureDetails, FailureItem, Group, PayloadVersion
from deadletter.ops.recovery import RecoveryEntry
from deadletter.ops.review import ReviewEntry
from deadletter.redact import Redactor

T = TypeVar("T")


class Redaction:
    """Redacted copies of what the service layer returns; `redactor=None` copies
    nothing (an admin's view)."""

    def __init__(self, redactor: Redactor | None) -> None:
        self.redactor = redactor

    def text(self, text: str | None) -> str | None:
        if self.redactor is None or text is None:
            return text
        return self.redactor.redact_text(text)

    def value(self, value: T) -> T:
        if self.redactor is None:
            return value
        # A redacted copy has the shape of the value: only strings in it change.
        return cast(T, self.redactor.redact_value(value))

    def failure(self, item: FailureItem) -> FailureItem:
        return replace(
            item,
            error_message=self.text(item.error_message),
            reason=self.text(item.reason) or "",
            labels=self.value(item.labels),
        )

    def group(self, group: Group) -> Group:
        return replace(group, sample_message=self.text(group.sample_message))

    def recovery(self, entry: RecoveryEntry) -> RecoveryEntry:
        return replace(entry, reason=self.text(entry.reason))

    def review(self, entry: ReviewEntry) -> ReviewEntry:
        return replace(
            entry, error_message=self.text(entry.error_message), note=self.text(entry.note)
        )

    def audit(self, entry: AuditEntry) -> AuditEntry:
        return replace(
            entry, reason=self.text(entry.reason) or "", details=self.value(entry.details)
        )

    def details(self, details: FailureDetails) -> FailureDetails:
        return replace(
            details,
            job=self._job(details.job),
            failure=self.failure(details.failure),
            earlier_failures=[self.failure(item) for item in details.earlier_failures],
            attempts=[self._attempt(attempt) for attempt in details.attempts],
            group=self.group(details.group) if details.group else None,
            payload_history=[self._payload(version) for version in details.payload_history],
            forensics=self.value(details.forensics),
            origin=replace(details.origin, arguments=self.value(details.origin.arguments))
            if details.origin
            else None,
        )

    def seed_failures(self, document: dict[str, Any]) -> dict[str, Any]:
        failures = [
            {
                **row,
                "error_message": self.text(row["error_message"]),
                "site_name": self.text(row["site_name"]),
            }
            for row in document["failures"]
        ]
        return {**document, "failures": failures}

    def _job(self, job: Job) -> Job:
        return replace(
            job,
            payload=self.value(job.payload),
            last_error=self.text(job.last_error),
            labels=self.value(job.labels),
        )

    def _attempt(self, attempt: Attempt) -> Attempt:
        return replace(
            attempt, message=self.text(attempt.message), traceback=self.text(attempt.traceback)
        )

    def _payload(self, version: PayloadVersion) -> PayloadVersion:
        return replace(version, payload=self.value(version.payload))
