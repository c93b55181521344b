"""Export failures matching a filter as JSONL, CSV or JSON, streamed.

Rows are read in keyset chunks, each in its own short read transaction, and turned into
text chunk by chunk: a million failures never sit in memory, and no transaction stays
open while a slow client reads. JSON is one array, streamed element by element.

Payloads are left out unless `include_payload=True`. They are the jobs' own arguments,
exactly as stored (not redacted: a job needs them whole to run again), so exporting
them is for admins only; the caller checks that.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import fields
from enum import StrEnum
from typing import Any

from deadletter.errors import InvalidRequest
from deadletter.model import JSONObject
from deadletter.ops import audit
from deadletter.ops.audit import AuditAction
from deadletter.ops.failures import (
    KEYS,
    FailureItem,
    cursor_scope,
    failure_item,
    failure_key,
    fetch_failures,
)
from deadletter.ops.filters import FailureFilter, required
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.rows import loads

CHUNK_ROWS = 1000
ExportRow = JSONObject


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    JSON = "json"


def export_failures(
    store: Store,
    failure_filter: FailureFilter,
    *,
    fmt: ExportFormat | str,
    actor: str,
    reason: str,
    include_payload: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[str]:
    """The export as text chunks. The export is recorded in the audit log now, with its
    reason (required: an export takes every matching failure out of the system), in the
    transaction that reads its first chunk; the rest is read as the chunks are taken."""
    who, why, form = required(actor, "actor"), required(reason, "reason"), _format(fmt)
    with store.transaction() as execute:
        audit.record(
            execute,
            at=time.time(),
            actor=who,
            action=AuditAction.EXPORT,
            target=failure_filter.describe(),
            reason=why,
            details={
                "filter": failure_filter.to_json(),
                "format": form.value,
                "include_payload": include_payload,
            },
        )
        first = _chunk(execute, failure_filter, None, chunk_rows, include_payload)
    chunks = _chunks(store, failure_filter, first, chunk_rows, include_payload)
    if form is ExportFormat.CSV:
        return _csv(chunks, CSV_COLUMNS + (["payload"] if include_payload else []))
    if form is ExportFormat.JSON:
        return _json_array(chunks)
    return _jsonl(chunks)


def _format(fmt: ExportFormat | str) -> ExportFormat:
    try:
        return ExportFormat(fmt)
    except ValueError as exc:
        known = ", ".join(f.value for f in ExportFormat)
        raise InvalidRequest("format", f"unknown format {fmt!r}; known: {known}") from exc


def _chunk(
    execute: Execute, failure_filter: FailureFilter, cursor: str | None, rows: int, payload: bool
) -> list[tuple[FailureItem, ExportRow]]:
    clauses = [*failure_filter.clauses(), *KEYS.after(cursor, cursor_scope(failure_filter))]
    found = []
    for row in fetch_failures(execute, clauses, limit=rows, payload=payload):
        item = failure_item(row)
        record = item.to_json()
        if payload:
            record["payload"] = loads(row[-1])
        found.append((item, record))
    return found


def _chunks(
    store: Store,
    failure_filter: FailureFilter,
    first: list[tuple[FailureItem, ExportRow]],
    rows: int,
    payload: bool,
) -> Iterator[list[ExportRow]]:
    chunk = first
    while chunk:
        yield [record for _, record in chunk]
        if len(chunk) < rows:
            return
        cursor = KEYS.cursor(failure_key(chunk[-1][0]), cursor_scope(failure_filter))
        with store.snapshot() as execute:
            chunk = _chunk(execute, failure_filter, cursor, rows, payload)


def _jsonl(chunks: Iterator[list[ExportRow]]) -> Iterator[str]:
    for chunk in chunks:
        yield "".join(_json(record) + "\n" for record in chunk)


def _json(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _json_array(chunks: Iterator[list[ExportRow]]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for chunk in chunks:
        for record in chunk:
            yield separator + _json(record)
            separator = ",\n"
    yield "\n]\n"


# CSV cells are text: labels and payloads are JSON in their cell, absent values empty.
CSV_COLUMNS = [f.name for f in fields(FailureItem)]


def _csv(chunks: Iterator[list[ExportRow]], columns: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    yield _drain(buffer)
    for chunk in chunks:
        writer.writerows({k: _cell(v) for k, v in record.items()} for record in chunk)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _cell(value: Any) -> Any:
    return _json(value) if isinstance(value, dict | list) else value
