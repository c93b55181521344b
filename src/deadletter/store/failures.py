"""Recording handled dead letters: SQL that reads the same on SQLite and PostgreSQL.

Unlike the leasing hot path, these statements are plain ANSI SQL plus
`ON CONFLICT ... RETURNING`, which both databases share; they are written once with
`?` placeholders, and the PostgreSQL store translates them. A batch of dead letters
costs a fixed handful of statements, not a handful per letter: each step is one
multi-row statement (`_rows` builds its VALUES list). Every step is idempotent per
dead letter: the failure row's primary key decides whether the rest runs, so a dead
letter delivered twice is recorded, routed and alerted once.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deadletter.model import FailureAlert, FailureRecord, Notice
from deadletter.store.query import marks


class DbCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


Execute = Callable[[str, tuple[Any, ...]], DbCursor]

# Records per statement: 17 columns x 200 stays far below both databases' limits on
# parameters (SQLite 32,766, PostgreSQL 65,535).
CHUNK = 200

INSERT_FAILURES = """
INSERT INTO dlq_failures (dead_letter_id, job_id, queue, task, error_class, rule, fingerprint,
    error_type, error_message, http_status, retry_count, reason, labels, forensics_key,
    created_at, failed_at, handled_at)
VALUES {rows}
ON CONFLICT (dead_letter_id) DO NOTHING
RETURNING dead_letter_id
"""

# Step 1 of the seed's handler: the job's status becomes failed.
MARK_FAILED = (
    "UPDATE queue_jobs SET status = 'failed' WHERE id IN ({ids}) AND status = 'dead_lettered'"
)

KNOWN_GROUPS = "SELECT fingerprint FROM dlq_error_groups WHERE fingerprint IN ({ids})"

UPSERT_GROUPS = """
INSERT INTO dlq_error_groups (fingerprint, error_class, error_type, sample_message, queue,
    count, first_seen, last_seen)
VALUES {rows}
ON CONFLICT (fingerprint) DO UPDATE SET count = dlq_error_groups.count + excluded.count,
    last_seen = CASE WHEN excluded.last_seen > dlq_error_groups.last_seen
                     THEN excluded.last_seen ELSE dlq_error_groups.last_seen END
"""

# A job that failed again after a requeue comes back to its own recovery row.
UPSERT_RECOVERY = """
INSERT INTO dlq_recovery_queue (job_id, dead_letter_id, queue, status, created_at, updated_at)
VALUES {rows}
ON CONFLICT (job_id) DO UPDATE SET status = 'pending',
    dead_letter_id = excluded.dead_letter_id, updated_at = excluded.updated_at
"""

INSERT_NOTIFICATIONS = """
INSERT INTO user_notifications (id, job_id, user_id, title, message, status, next_attempt_at,
    created_at)
VALUES {rows}
ON CONFLICT (id) DO NOTHING
"""

INSERT_REVIEWS = """
INSERT INTO dlq_review_log (dead_letter_id, job_id, fingerprint, created_at)
VALUES {rows}
ON CONFLICT (dead_letter_id) DO NOTHING
"""

# The alerts a new one may fold into (model.FailureAlert), oldest first.
RECENT_ALERTS = """
SELECT fingerprint, kind, id FROM ops_alerts
WHERE fingerprint IN ({ids}) AND kind IN ({kinds}) AND created_at >= ?
ORDER BY created_at
"""

COUNT_INTO_ALERT = "UPDATE ops_alerts SET occurrences = occurrences + ? WHERE id = ?"

INSERT_ALERTS = """
INSERT INTO ops_alerts (id, kind, fingerprint, title, body, status, next_attempt_at, created_at)
VALUES {rows}
ON CONFLICT (id) DO NOTHING
"""


@dataclass
class Recorded:
    """What one call recorded: new failures (not seen before) and new fingerprints."""

    new: list[str] = field(default_factory=list)
    new_fingerprints: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


def record_failures(
    execute: Execute, records: Sequence[FailureRecord], *, now: float, alert_window: float
) -> Recorded:
    recorded = Recorded()
    unique = list({record.dead_letter_id: record for record in records}.values())
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        _record_chunk(execute, chunk, recorded, now=now, alert_window=alert_window)
    return recorded


def insert_alert(
    execute: Execute, *, alert_id: str, kind: str, title: str, body: str, now: float
) -> None:
    """An alert not tied to one failure (parked dead letters, fired thresholds)."""
    _insert(execute, INSERT_ALERTS, [(alert_id, kind, None, title, body, "pending", now, now)])


def _record_chunk(
    execute: Execute,
    records: list[FailureRecord],
    recorded: Recorded,
    *,
    now: float,
    alert_window: float,
) -> None:
    new = _insert_failures(execute, records, now)
    if not new:
        return
    recorded.new.extend(record.dead_letter_id for record in new)
    _run(execute, MARK_FAILED, ids=[record.job_id for record in new])
    fresh = _new_groups(execute, new)
    recorded.new_fingerprints.extend(fresh)
    _route(execute, new, now)
    recorded.alerts.extend(_alerts(execute, new, fresh, now, alert_window))


def _insert_failures(
    execute: Execute, records: list[FailureRecord], now: float
) -> list[FailureRecord]:
    """Insert the failures; those that were not recorded already."""
    rows = [_failure_params(record, now) for record in records]
    inserted = {row[0] for row in _insert(execute, INSERT_FAILURES, rows).fetchall()}
    return [record for record in records if record.dead_letter_id in inserted]


def _new_groups(execute: Execute, records: list[FailureRecord]) -> list[str]:
    """Count the records into their groups; the fingerprints never seen before."""
    fingerprints = list(dict.fromkeys(record.fingerprint for record in records))
    known = {row[0] for row in _run(execute, KNOWN_GROUPS, ids=fingerprints).fetchall()}
    counts = Counter(record.fingerprint for record in records)
    firsts = {record.fingerprint: record for record in reversed(records)}
    lasts = {record.fingerprint: record for record in records}
    rows = [_group_params(firsts[fp], counts[fp], lasts[fp].failed_at) for fp in fingerprints]
    _insert(execute, UPSERT_GROUPS, rows)
    return [fp for fp in fingerprints if fp not in known]


def _route(execute: Execute, records: list[FailureRecord], now: float) -> None:
    """Insert the rows the handler gave each record (its recovery row, notice, review
    entry); which rows a route adds is the handler's to say."""
    # One recovery row per job: the last of its letters wins, as one upsert each would.
    recovery = {
        r.job_id: (r.job_id, r.dead_letter_id, r.queue, "pending", now, now)
        for r in records
        if r.recovery
    }
    notices = [_notification_params(r, r.notice, now) for r in records if r.notice is not None]
    reviews = [(r.dead_letter_id, r.job_id, r.fingerprint, now) for r in records if r.review]
    for sql, rows in (
        (UPSERT_RECOVERY, list(recovery.values())),
        (INSERT_NOTIFICATIONS, notices),
        (INSERT_REVIEWS, reviews),
    ):
        if rows:
            _insert(execute, sql, rows)


def _notification_params(record: FailureRecord, notice: Notice, now: float) -> tuple[Any, ...]:
    status = "pending" if record.user_id else "no_user"
    r = record
    return (r.dead_letter_id, r.job_id, r.user_id, notice.title, notice.message, status, now, now)


def _alerts(
    execute: Execute, records: list[FailureRecord], fresh: list[str], now: float, window: float
) -> list[str]:
    """Raise each record's alert as model.FailureAlert says, or count it into one raised
    within the window; the ids of the alerts raised."""
    wanted = [
        (r.fingerprint, r.alert)
        for r in records
        if r.alert is not None and (r.alert.always or r.fingerprint in fresh)
    ]
    if not wanted:
        return []
    recent = _recent_alerts(execute, wanted, after=now - window)
    unalerted = set(fresh)
    raised: list[tuple[Any, ...]] = []
    counted: Counter[str] = Counter()
    for fingerprint, alert in wanted:
        into = _fold_into(recent[fingerprint], alert.folds_into)
        if into is not None:
            # An alert this failure raised itself (it was re-classified) counts it already.
            if into not in (alert.first.id, alert.again.id):
                counted[into] += 1
            continue
        text = alert.first if fingerprint in unalerted else alert.again
        unalerted.discard(fingerprint)
        recent[fingerprint].append((text.kind, text.id))
        raised.append((text.id, text.kind, fingerprint, text.title, text.body, "pending", now, now))
    if raised:
        _insert(execute, INSERT_ALERTS, raised)
    for alert_id, count in counted.items():
        execute(COUNT_INTO_ALERT, (count, alert_id))
    return [row[0] for row in raised]


def _recent_alerts(
    execute: Execute, wanted: list[tuple[str, FailureAlert]], *, after: float
) -> defaultdict[str, list[tuple[str, str]]]:
    """(kind, id) of the alerts raised since `after`, oldest first, by fingerprint."""
    ids = list(dict.fromkeys(fingerprint for fingerprint, _ in wanted))
    kinds = sorted({kind for _, alert in wanted for kind in alert.folds_into})
    sql = RECENT_ALERTS.format(ids=marks(ids), kinds=marks(kinds))
    recent: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    for fingerprint, kind, alert_id in execute(sql, (*ids, *kinds, after)).fetchall():
        recent[fingerprint].append((kind, alert_id))
    return recent


def _fold_into(recent: list[tuple[str, str]], kinds: frozenset[str]) -> str | None:
    """The latest of `recent` of one of `kinds`."""
    return next((alert_id for kind, alert_id in reversed(recent) if kind in kinds), None)


def _insert(execute: Execute, sql: str, rows: Sequence[tuple[Any, ...]]) -> DbCursor:
    """`sql` with its `{rows}` replaced by one `(?, ...)` group per row, run once."""
    group = f"({marks(rows[0])})"
    values = tuple(value for row in rows for value in row)
    return execute(sql.format(rows=", ".join([group] * len(rows))), values)


def _run(
    execute: Execute, sql: str, *, ids: Sequence[Any], after: tuple[Any, ...] = ()
) -> DbCursor:
    """`sql` with its `{ids}` replaced by one placeholder per id, then `after`'s."""
    return execute(sql.format(ids=marks(ids)), (*ids, *after))


def _failure_params(r: FailureRecord, now: float) -> tuple[Any, ...]:
    return (
        r.dead_letter_id,
        r.job_id,
        r.queue,
        r.task,
        r.error_class.value,
        r.rule,
        r.fingerprint,
        r.error_type,
        r.error_message,
        r.http_status,
        r.retry_count,
        r.reason,
        json.dumps(r.labels),
        r.forensics_key,
        r.created_at,
        r.failed_at,
        now,
    )


def _group_params(r: FailureRecord, count: int, last_seen: float) -> tuple[Any, ...]:
    message = (r.error_message or "")[:300]
    return (
        r.fingerprint,
        r.error_class.value,
        r.error_type,
        message,
        r.queue,
        count,
        r.failed_at,
        last_seen,
    )


def route_again(
    execute: Execute, records: Sequence[FailureRecord], *, now: float, alert_window: float
) -> list[str]:
    """Insert the rows the handler gave failures recorded before (re-classified): each
    keyed by the dead letter as when it was handled, so nothing is sent twice. The ids
    of the alerts raised."""
    if not records:
        return []
    _route(execute, list(records), now)
    return _alerts(execute, list(records), [], now, alert_window)
