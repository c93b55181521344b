"""The DLQ handler: the seed's `deadLetterQueue(batch, env)`, four steps per dead letter.

1. update the job's status to failed, 2. store the forensic record, 3. classify the
error and fingerprint it, 4. route it by class. Step 2 is an idempotent blob put
made first, for the whole batch at once; steps 1, 3 and 4 are one database
transaction keyed by the dead letter, so a letter delivered twice is recorded once.
A letter whose steps fail is returned as failed: the worker retries it with backoff,
and after its retries parks it on `<dlq>-parked`. One bad letter never blocks the rest of its batch.
A blob store that cannot be reached or written is not the letter's fault: it trips the
store's breaker (breaker.py) and the batch's letters are given back uncharged
(`NotTaken`); the worker takes no letters until a probe finds the store back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from deadletter.breaker import Breaker, OutageNotice, Wording
from deadletter.classify import ErrorInfo, Rule, classify
from deadletter.dlq import wording
from deadletter.dlq.fingerprint import fingerprint
from deadletter.errors import BlobStoreUnavailable, NotTaken, Retry
from deadletter.events import EventLog
from deadletter.forensics import document as forensic
from deadletter.forensics.base import BlobStore
from deadletter.model import (
    DeadLetter,
    ErrorClass,
    FailureRecord,
    JSONObject,
    LastFailure,
    LeasedJob,
    RecordedFailure,
    Route,
)
from deadletter.redact import Redactors
from deadletter.store.base import Store

DEFAULT_ROUTES: Mapping[ErrorClass, Route] = {
    ErrorClass.RECOVERABLE: Route.RECOVERY,
    ErrorClass.USER_ERROR: Route.NOTIFY_USER,
    ErrorClass.SYSTEM_ERROR: Route.ALERT_OPS,
    ErrorClass.UNKNOWN: Route.REVIEW,
}

USER_LABEL = "user"
WAITING = Wording(
    waiting="Dead letters",
    held="No dead letter is taken, charged or parked",
    resumed="the waiting dead letters are handled",
)
SUMMARY_LIMIT = 500


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A letter's failure record and forensic blob, before either is stored."""

    record: FailureRecord
    key: str
    blob: bytes


@dataclass
class DeadLetterHandler:
    store: Store
    blobs: BlobStore
    rules: Sequence[Rule]
    redactors: Redactors
    events: EventLog
    routes: Mapping[ErrorClass, Route] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    alert_window: float = 900.0
    host: forensic.Host = field(default_factory=forensic.Host.current)
    breaker: Breaker = field(init=False)

    def __post_init__(self) -> None:
        notice = OutageNotice(self.events, "dlq", WAITING, self.store, self.redactors.pii)
        self.breaker = Breaker("blob store", self.blobs.check, notice.began, notice.ended)

    def __call__(self, letters: Sequence[LeasedJob]) -> dict[str, BaseException]:
        """Handle the batch; the letters whose steps failed, each with a `Retry` whose
        cause is the step's error. A step error is never the job's failure: classified
        by the job rules, "NoSuchBucket (HTTP 404)" would read as a user error and the
        letter would be parked on its first try. While the blob store is down, every
        letter is `NotTaken`: given back, uncharged."""
        if not self.breaker.closed:
            return {letter.id: NotTaken("the blob store is down") for letter in letters}
        failed = self._handle(letters)
        return {
            letter_id: exc if isinstance(exc, NotTaken) else _retry(exc)
            for letter_id, exc in failed.items()
        }

    def takes_letters(self) -> bool:
        """Whether the components the handler writes to are up (the worker asks)."""
        return self.breaker.closed

    def probe(self) -> None:
        """Probe a component found down, with backoff (a periodic duty of the worker)."""
        self.breaker.probe_if_due()

    def _handle(self, letters: Sequence[LeasedJob]) -> dict[str, BaseException]:
        failed: dict[str, BaseException] = {}
        prepared: dict[str, _Prepared] = {}
        for letter in letters:
            try:
                prepared[letter.id] = self._prepare(letter)
            except Exception as exc:  # one bad letter must not block the batch
                failed[letter.id] = exc
                self._step_failed(letter, "forensics", exc)
        records = self._store_forensics(letters, prepared, failed)
        if records:
            failed.update(self._record(letters, records))
        return failed

    # -- steps 2 and 3: forensics, classification --------------------------------

    def _store_forensics(
        self,
        letters: Sequence[LeasedJob],
        prepared: Mapping[str, _Prepared],
        failed: dict[str, BaseException],
    ) -> list[FailureRecord]:
        """Put the batch's forensic records at once; the records whose put succeeded."""
        not_stored = self.blobs.put_many({p.key: p.blob for p in prepared.values()})
        records = []
        for letter in letters:
            if letter.id not in prepared:
                continue
            error = not_stored.get(prepared[letter.id].key)
            if error is None:
                records.append(prepared[letter.id].record)
            elif isinstance(error, BlobStoreUnavailable):
                self.breaker.trip(error)
                failed[letter.id] = NotTaken(str(error))
            else:
                failed[letter.id] = error
                self._step_failed(letter, "forensics", error)
        return records

    def _prepare(self, letter: LeasedJob) -> _Prepared:
        dead = DeadLetter.from_json(letter.payload)
        cause = dead.cause
        error_class, rule = self._classification(cause)
        group = fingerprint(cause.error_type or "", cause.message or "", cause.traceback)
        failed_at = dead.last.ended_at or time.time()
        key = forensic.key(dead.queue, failed_at, letter.id)
        doc = forensic.document(
            self._redacted(letter.payload),
            classification={"class": error_class.value, "rule": rule},
            fingerprint=group,
            host=self.host,
        )
        record = self._failure_record(letter, dead, error_class, rule, group, key, failed_at)
        return _Prepared(record, key, forensic.encode(doc))

    def _redacted(self, letter: JSONObject) -> JSONObject:
        """The letter for its forensic record: the job's own data redacted of secrets,
        its attempts as they were recorded. Every writer of an attempt redacts its
        message and traceback before they reach the database (worker/retry.py,
        integrations/core.py), with the rules the handler has; redacting them again
        cost a 4-attempt letter ~100 us of a ~1 ms path (docs/benchmarks.md)."""
        redact = self.redactors.secrets.redact_value
        return {
            key: value if key == "attempts" else redact(value)  # type: ignore[misc]
            for key, value in letter.items()
        }

    def _classification(self, cause: LastFailure) -> tuple[ErrorClass, str]:
        """The worker classified the attempt when it failed; classify again only if not."""
        if cause.error_class and cause.rule:
            return ErrorClass(cause.error_class), cause.rule
        info = ErrorInfo.from_record(cause.error_type or "", cause.message or "", cause.http_status)
        verdict = classify(info, self.rules)
        return verdict.error_class, verdict.rule

    def _failure_record(
        self,
        letter: LeasedJob,
        dead: DeadLetter,
        error_class: ErrorClass,
        rule: str,
        group: str,
        key: str,
        failed_at: float,
    ) -> FailureRecord:
        cause = dead.cause
        record = FailureRecord(
            dead_letter_id=letter.id,
            job_id=dead.job_id,
            queue=dead.queue,
            task=dead.task,
            error_class=error_class,
            rule=rule,
            fingerprint=group,
            error_type=cause.error_type,
            error_message=cause.message or "",
            http_status=cause.http_status,
            retry_count=max(dead.last.number - 1, 0),
            reason=dead.reason,
            labels=dead.labels,
            forensics_key=key,
            created_at=dead.created_at or failed_at,
            failed_at=failed_at,
            route=self.routes[error_class],
            user_id=dead.labels.get(USER_LABEL),
        )
        return self._routed(record, poison=dead.poison)

    def _routed(self, record: FailureRecord, *, poison: bool) -> FailureRecord:
        """`record` with the rows its route adds: a recovery row, a review entry, the
        notice it sends a user, and the alert it may raise. A handled letter and a
        re-classified failure (`regrade`) are routed alike, here."""
        short_type = (record.error_type or "Error").rsplit(".", 1)[-1]
        text = f"{short_type}: {record.error_message or ''}"
        summary = self.redactors.pii.redact_text(text)[:SUMMARY_LIMIT]
        notice = None
        if record.route is Route.NOTIFY_USER:
            notice = wording.notice(record.task, http_status=record.http_status, summary=summary)
        return replace(
            record,
            recovery=record.route is Route.RECOVERY,
            review=record.route is Route.REVIEW,
            notice=notice,
            alert=wording.alert(record, summary=summary, poison=poison),
        )

    # -- re-classifying recorded failures (ops/reclassify.py) ---------------------------

    def regrade(self, failure: RecordedFailure) -> FailureRecord | None:
        """`failure` classified again by the current rules, routed and worded as a new
        one would be; None when its class did not change."""
        info = ErrorInfo.from_record(
            failure.error_type or "", failure.error_message or "", failure.http_status
        )
        verdict = classify(info, self.rules)
        if verdict.error_class is failure.error_class:
            return None
        record = FailureRecord(
            **{**asdict(failure), "error_class": verdict.error_class, "rule": verdict.rule},
            route=self.routes[verdict.error_class],
            user_id=failure.labels.get(USER_LABEL),
        )
        return self._routed(record, poison=False)

    # -- steps 1 and 4: status and routing, in one transaction -------------------------

    def _record(
        self, letters: Sequence[LeasedJob], records: list[FailureRecord]
    ) -> dict[str, BaseException]:
        try:
            recorded = self.store.record_failures(
                records, now=time.time(), alert_window=self.alert_window
            )
        except Exception as exc:  # the database hiccuped: every letter of the batch retries
            by_id = {letter.id: letter for letter in letters}
            for record in records:
                self._step_failed(by_id[record.dead_letter_id], "record", exc)
            return {record.dead_letter_id: exc for record in records}
        new = set(recorded.new)
        for record in records:
            self.events.emit(
                "dlq.handled" if record.dead_letter_id in new else "dlq.duplicate",
                job_id=record.job_id,
                dead_letter_id=record.dead_letter_id,
                queue=record.queue,
                error_class=record.error_class.value,
                rule=record.rule,
                fingerprint=record.fingerprint,
                route=record.route.value,
                new_group=record.fingerprint in recorded.new_fingerprints,
            )
        return {}

    def _step_failed(self, letter: LeasedJob, step: str, exc: BaseException) -> None:
        last_try = letter.attempt > letter.max_retries
        self.events.emit(
            "dlq.parked" if last_try else "dlq.step_failed",
            job_id=letter.payload.get("job_id"),
            dead_letter_id=letter.id,
            queue=letter.queue,
            step=step,
            attempt=letter.attempt,
            error=f"{type(exc).__name__}: {exc}",
        )
        if last_try:
            self._alert_parked(letter, step, exc)

    def _alert_parked(self, letter: LeasedJob, step: str, exc: BaseException) -> None:
        title = f"Dead letter parked on {letter.dead_letter_queue}"
        body = self.redactors.pii.redact_text(
            f"dead letter {letter.id} (job {letter.payload.get('job_id')}) could not be handled"
            f" after {letter.attempt} attempts; step {step} failed with"
            f" {type(exc).__name__}: {exc}. It is kept on {letter.dead_letter_queue}."
        )
        try:
            self.store.add_alert(
                alert_id=f"parked-{letter.id}",
                kind="parked",
                title=title,
                body=body,
                now=time.time(),
            )
        except Exception:  # the parked letter itself stays visible; this alert is a courtesy
            self.events.emit("dlq.alert_failed", dead_letter_id=letter.id, kind="parked")


def _retry(exc: BaseException) -> Retry:
    retry = Retry(f"{type(exc).__name__}: {exc}")
    retry.__cause__ = exc
    return retry
