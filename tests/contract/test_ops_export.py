"""Export on every backend: each format parses back to the rows listed, streamed in chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.export import ExportFormat, export_failures
from deadletter.ops.failures import list_failures
from deadletter.ops.filters import FailureFilter
from tests.support.operator import OTHER_Q, fail, record_failures

ROWS = 2500


def listed(dlq_app: App, failure_filter: FailureFilter) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = list_failures(dlq_app.store, failure_filter, limit=1000, cursor=cursor)
        rows.extend(item.to_json() for item in page.items)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def as_csv(row: dict[str, Any]) -> dict[str, str]:
    """What a CSV cell holds: JSON for labels and payloads, empty for nothing."""
    return {
        key: ""
        if value is None
        else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if isinstance(value, dict | list)
        else str(value)
        for key, value in row.items()
    }


PARSE: dict[ExportFormat, Callable[[str], Any]] = {
    ExportFormat.JSONL: lambda text: [json.loads(line) for line in text.splitlines()],
    ExportFormat.JSON: json.loads,
    ExportFormat.CSV: lambda text: list(csv.DictReader(io.StringIO(text))),
}


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_each_format_parses_back_to_the_listed_rows(dlq_app: App, fmt: ExportFormat) -> None:
    record_failures(dlq_app, ROWS)
    expected = listed(dlq_app, FailureFilter())
    chunks = list(
        export_failures(dlq_app.store, FailureFilter(), fmt=fmt, actor="ana", reason="audit")
    )
    assert len(chunks) >= 3  # read and sent 1,000 rows at a time
    parsed = PARSE[fmt]("".join(chunks))
    assert len(parsed) == ROWS
    assert parsed == ([as_csv(row) for row in expected] if fmt is ExportFormat.CSV else expected)


def test_the_filter_applies_and_the_export_is_audited_when_asked(dlq_app: App) -> None:
    record_failures(dlq_app, 30)
    stream = export_failures(
        dlq_app.store, FailureFilter(queue=OTHER_Q), fmt="jsonl", actor="ana", reason="postmortem"
    )
    [record] = audit_entries(dlq_app.store, action=AuditAction.EXPORT).items
    assert (record.actor, record.reason, record.target) == ("ana", "postmortem", f"queue={OTHER_Q}")
    assert record.details == {
        "filter": {"queue": OTHER_Q},
        "format": "jsonl",
        "include_payload": False,
    }
    rows = [json.loads(line) for line in "".join(stream).splitlines()]
    assert len(rows) == 10 and {row["queue"] for row in rows} == {OTHER_Q}


def test_payloads_only_when_asked(dlq_app: App) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/secret")
    plain = json.loads(
        "".join(
            export_failures(dlq_app.store, FailureFilter(), fmt="json", actor="ana", reason="audit")
        )
    )
    assert plain[0]["job_id"] == job_id and "payload" not in plain[0]
    full = json.loads(
        "".join(
            export_failures(
                dlq_app.store,
                FailureFilter(),
                fmt="json",
                actor="root",
                reason="audit",
                include_payload=True,
            )
        )
    )
    assert full[0]["payload"] == {"args": ["tiles/secret"], "kwargs": {}}
    text = "".join(
        export_failures(
            dlq_app.store,
            FailureFilter(),
            fmt=ExportFormat.CSV,
            actor="root",
            reason="audit",
            include_payload=True,
        )
    )
    [row] = csv.DictReader(io.StringIO(text))
    assert json.loads(row["payload"]) == {"args": ["tiles/secret"], "kwargs": {}}


def test_an_empty_export_is_still_well_formed(dlq_app: App) -> None:
    for fmt in ExportFormat:
        text = "".join(
            export_failures(dlq_app.store, FailureFilter(), fmt=fmt, actor="ana", reason="audit")
        )
        assert PARSE[fmt](text) == []
    with pytest.raises(InvalidRequest, match="format"):
        export_failures(dlq_app.store, FailureFilter(), fmt="xml", actor="ana", reason="audit")


def test_an_export_needs_a_reason(dlq_app: App) -> None:
    for blank in ("", "  "):
        with pytest.raises(InvalidRequest, match="reason"):
            export_failures(dlq_app.store, FailureFilter(), fmt="json", actor="ana", reason=blank)
    assert audit_entries(dlq_app.store, action=AuditAction.EXPORT).items == []
