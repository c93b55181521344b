"""`deadletter import`: adopt the failures a host system already holds.

Each host module reads what its host keeps (RQ's failed job registry, Dramatiq's
dead-letter queues, Celery's failed results) into `Held` failures; this module turns
them into the same events live capture writes. Importing twice adds nothing: a
message already dead-lettered here is skipped, and every event id is derived from
the message, so that even a race with live capture records each attempt once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from deadletter.classify import ErrorInfo, classify
from deadletter.integrations.core import Recorder
from deadletter.model import HostAttempt, HostEvent, Origin
from deadletter.store.hosts import adopted_job_id


@dataclass(frozen=True, slots=True)
class Run:
    """One failed run the host kept: its traceback text, and when and where it ran."""

    traceback: str
    ended_at: float
    started_at: float | None = None
    worker: str = ""


@dataclass(frozen=True, slots=True)
class Held:
    """A failure the host holds: the message, where it came from, its failed runs."""

    message_id: str
    origin: Origin
    runs: list[Run]
    reason: str


@dataclass(slots=True)
class ImportReport:
    system: str
    dry_run: bool
    found: int = 0
    adopted: int = 0
    known: int = 0
    adopted_ids: list[str] = field(default_factory=list)


def import_failures(recorder: Recorder, held: Iterable[Held], *, dry_run: bool) -> ImportReport:
    """Adopt each held failure not already here; with `dry_run`, only count them."""
    report = ImportReport(recorder.system, dry_run)
    store = recorder.app.store
    for failure in held:
        report.found += 1
        job_id = adopted_job_id(recorder.system, failure.message_id)
        if store.get_job(job_id) is not None:
            report.known += 1
            continue
        if not dry_run:
            dead = store.record_host_events(_events(recorder, failure), now=time.time())
            report.adopted += len(dead)
            report.adopted_ids.extend(dead)
        else:
            report.adopted += 1
    return report


def _events(recorder: Recorder, failure: Held) -> list[HostEvent]:
    attempts = [_attempt(recorder, failure, number, run) for number, run in enumerate(failure.runs)]
    last = recorder.give_up_event(attempts[-1], failure.origin, f"imported: {failure.reason}")
    return [*attempts[:-1], last]


def _attempt(recorder: Recorder, failure: Held, number: int, run: Run) -> HostAttempt:
    error_type, message = error_line(run.traceback)
    info = ErrorInfo.from_record(error_type, message, None)
    verdict = classify(info, recorder.app.rules)
    return HostAttempt(
        event_id=f"import-{recorder.system}-{failure.message_id}-{number}",
        system=recorder.system,
        message_id=failure.message_id,
        started_at=run.started_at if run.started_at is not None else run.ended_at,
        ended_at=run.ended_at,
        worker=run.worker or recorder.system,
        error_type=error_type,
        message=recorder.redacted_message(message),
        traceback=recorder.redactor.redact_text(run.traceback),
        http_status=info.http_status,
        error_class=verdict.error_class,
        rule=verdict.rule,
    )


def error_line(traceback: str) -> tuple[str, str]:
    """(type, message) from the last line of a Python traceback, `pkg.Type: message`."""
    lines = [line for line in traceback.strip().splitlines() if line and not line[0].isspace()]
    last = lines[-1] if lines else "Error"
    error_type, _, message = last.partition(": ")
    return error_type.strip(), message.strip()
