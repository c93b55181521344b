"""The dashboard's chart and sparklines come from counters by time bucket that triggers
keep (migration 0007). Whatever writes dlq_failures, they must say what a count over
every failure says: that count is the oracle here."""

from __future__ import annotations

import time
from collections import Counter

from deadletter.app import App
from deadletter.model import ErrorClass
from deadletter.ops.archive import purge
from deadletter.ops.dashboard import SPANS, SPARK_HOURS, failure_series, sparklines
from deadletter.store.base import Store
from deadletter.store.dashboard import route_rows
from tests.support.operator import fail, record_failures


def scanned_series(store: Store, span: str, now: float) -> dict[str, list[int]]:
    length, _, step = SPANS[span]
    first = (int(now) - length) // step * step + step
    slots = len(range(first, int(now) + 1, step))
    with store.snapshot() as execute:
        rows = execute("SELECT error_class, failed_at FROM dlq_failures", ()).fetchall()
    counts = {c.value: [0] * slots for c in ErrorClass}
    for error_class, failed_at in rows:
        slot = (int(failed_at) // step * step - first) // step
        if 0 <= slot < slots:
            counts[error_class][slot] += 1
    return counts


def scanned_lines(store: Store, now: float) -> dict[str, list[int]]:
    first = (int(now) // 3600 - SPARK_HOURS + 1) * 3600
    with store.snapshot() as execute:
        rows = execute("SELECT fingerprint, failed_at FROM dlq_failures", ()).fetchall()
    found: dict[str, Counter[int]] = {}
    for fingerprint, failed_at in rows:
        hour = (int(failed_at) // 3600 * 3600 - first) // 3600
        if 0 <= hour < SPARK_HOURS:
            found.setdefault(fingerprint, Counter())[hour] += 1
    return {fp: [c[h] for h in range(SPARK_HOURS)] for fp, c in found.items()}


def counts_hold(store: Store, now: float) -> None:
    for span in SPANS:
        assert failure_series(store, span=span, now=now).counts == scanned_series(
            store, span, now
        ), span
    expected = scanned_lines(store, now)
    assert {fp: line for fp, line in sparklines(store, list(expected), now=now).items()} == (
        expected
    )


def test_the_counts_equal_a_scan_after_real_and_recorded_failures_and_a_purge(
    dlq_app: App, store: Store
) -> None:
    fail(dlq_app, "charts.fetch", "tiles/1")
    fail(dlq_app, "reports.build", "invalid", "q3")
    now = time.time()
    # Failures over the last eight days, three at a time on one instant, 20 minutes and
    # a fraction apart: on and beside the edges of every bucket and span.
    record_failures(dlq_app, 1800, ties=3, start=now - 8 * 86_400, spacing=1200.25)
    for at in (now, now - 3600.5, now - 86_400, now - 7 * 86_400 + 1):
        counts_hold(store, at)
    purge(store, older_than_seconds=86_400, now=now, archived_only=False)
    counts_hold(store, now)
    with store.snapshot() as execute:
        left = execute("SELECT count(*) FROM dlq_failures WHERE failed_at < ?", (now - 86_400,))
        assert left.fetchone()[0] == 0


def test_a_failure_route_reads_the_alert_raised_about_its_group(dlq_app: App) -> None:
    """store/dashboard.py `route_rows` finds the alert of the failure's group among the
    kinds a handled dead letter raises (model.FAILURE_ALERT_KINDS)."""
    record_failures(dlq_app, 3, ties=1, start=time.time() - 60)
    with dlq_app.store.snapshot() as execute:
        rows = route_rows(
            execute, dead_letter_id="dl-000000", fingerprint="fp-odd", handled_at=time.time()
        )
    assert rows.alert is not None
    assert (rows.alert.id, rows.alert.kind) == ("new_failure-dl-000000", "new_failure")
