"""One failed job in full, for `deadletter show` and option 4 of `deadletter recover`."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from deadletter.cli.jobs import job_json
from deadletter.cli.views import add_row, error_text, short_type, when
from deadletter.model import Attempt
from deadletter.ops.failures import FailureDetails


def details_json(details: FailureDetails) -> dict[str, Any]:
    return {
        "job": job_json(details.job),
        "failure": details.failure.to_json(),
        "earlier_failures": [item.to_json() for item in details.earlier_failures],
        "attempts": [attempt.to_json() for attempt in details.attempts],
        "group": asdict(details.group) if details.group else None,
        "payload_history": [asdict(version) for version in details.payload_history],
        "forensics": details.forensics,
        "forensics_error": details.forensics_error,
        "origin": details.origin.to_json() if details.origin else None,
    }


def print_details(console: Console, details: FailureDetails) -> None:
    console.print(_summary(details))
    console.print(_attempts_table(details.attempts))
    traceback = _last_traceback(details.attempts)
    if traceback:
        console.print(Panel(Syntax(traceback, "pytb", word_wrap=True), title="last traceback"))
    if details.earlier_failures:
        console.print(_earlier(details))
    for version in details.payload_history:
        replaced = f"payload replaced by {version.replaced_by} at {when(version.replaced_at)}:"
        console.print(Text(f"{replaced} {json.dumps(version.payload)}"))
    console.print(_forensics_line(details))


def _summary(details: FailureDetails) -> Panel:
    job, failure = details.job, details.failure
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    group = details.group
    seen = (
        f" ({group.count} failures, {when(group.first_seen)} to {when(group.last_seen)})"
        if group
        else ""
    )
    rows = [
        ("queue / task", f"{job.queue} / {job.task}"),
        ("status now", job.status.value + _recovery(failure.recovery_status)),
        ("class", f"{failure.error_class} (rule {failure.rule})"),
        ("error", error_text(failure.error_type, failure.error_message, limit=10_000)),
        ("http status", str(failure.http_status or "")),
        ("reason", failure.reason),
        ("group", failure.fingerprint + seen),
        ("attempts", f"{job.attempts} ({failure.retry_count} retries before this failure)"),
        ("created / failed", f"{when(job.created_at)} / {when(failure.failed_at)}"),
        ("origin", _origin(details)),
        ("labels", json.dumps(job.labels)),
        ("payload", json.dumps(job.payload)),
    ]
    for name, value in rows:
        if value:
            add_row(table, name, value)
    return Panel(table, title=f"job {job.id}", title_align="left")


def _origin(details: FailureDetails) -> str:
    origin = details.origin
    if origin is None:
        return ""
    where = f"{origin.system} queue {origin.queue}, task {origin.task}, id {origin.original_id}"
    return f"{where}, arguments {json.dumps(origin.arguments)}"


def _recovery(status: str | None) -> str:
    return f", recovery {status}" if status else ""


def _attempts_table(attempts: list[Attempt]) -> Table:
    table = Table("#", title="attempts")
    table.add_column("started", no_wrap=True)
    table.add_column("took", no_wrap=True)
    for name in ("worker", "class / rule", "error"):
        table.add_column(name, overflow="fold")
    for attempt in attempts:
        ruled = f"{attempt.error_class or ''} / {attempt.rule}" if attempt.rule else ""
        add_row(
            table,
            str(attempt.number),
            when(attempt.started_at),
            f"{attempt.ended_at - attempt.started_at:.2f}s",
            attempt.worker,
            ruled,
            error_text(attempt.error_type, attempt.message, limit=200),
        )
    return table


def _last_traceback(attempts: list[Attempt]) -> str | None:
    return next((a.traceback for a in reversed(attempts) if a.traceback), None)


def _earlier(details: FailureDetails) -> Group:
    lines = [
        Text(f"  {when(item.failed_at)}  {item.error_class}  {short_type(item.error_type)}")
        for item in details.earlier_failures
    ]
    return Group(Text("earlier failures of this job (it was requeued):"), *lines)


def _forensics_line(details: FailureDetails) -> Text:
    key = details.failure.forensics_key
    if details.forensics is None:
        return Text(f"forensic record: unavailable ({details.forensics_error})", style="yellow")
    host = details.forensics.get("host") or {}
    attempts = len(details.forensics.get("attempts") or [])
    return Text(
        f"forensic record: {key} ({attempts} attempts, handled on {host.get('name', '?')};"
        " the whole document is under `forensics` in --json)"
    )
