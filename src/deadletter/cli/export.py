"""`deadletter export`: failures as JSONL, CSV or JSON, streamed to stdout or a file."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from deadletter.app import App
from deadletter.cli.context import actor, console, errors, open_app
from deadletter.cli.params import filter_options
from deadletter.ops.export import ExportFormat, export_failures
from deadletter.ops.filters import FailureFilter


@filter_options
def export(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why, for the audit log (required).")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="Output format.")
    ] = ExportFormat.JSONL,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    include_payload: Annotated[
        bool,
        typer.Option(
            "--include-payload", help="Add each job's payload: stored whole, NOT redacted."
        ),
    ] = False,
    *,
    failure_filter: FailureFilter,
) -> None:
    """Export failures matching the filters (all by default), streamed.

    A million rows never sit in memory. The export is recorded in the audit log."""
    with open_app(ctx) as app:
        if output is None:
            for chunk in _chunks(app, failure_filter, fmt, include_payload, reason):
                sys.stdout.buffer.write(chunk.encode())
            sys.stdout.flush()
            return
        size = write_export(
            app, failure_filter, fmt, output, reason=reason, include_payload=include_payload
        )
    console.print(f"exported {size:,} bytes of {fmt.value} to {output}")


def write_export(
    app: App,
    failure_filter: FailureFilter,
    fmt: ExportFormat,
    output: Path,
    *,
    reason: str,
    include_payload: bool = False,
) -> int:
    """Write the export to `output` with a progress line; its size in bytes. It is written
    beside `output` and renamed when complete, so `output` is never a partial export."""
    partial = output.with_name(output.name + ".part")
    written = 0
    columns = (TextColumn("exporting"), DownloadColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=errors) as progress, partial.open("wb") as file:
            task = progress.add_task("export", total=None)
            for chunk in _chunks(app, failure_filter, fmt, include_payload, reason):
                written += file.write(chunk.encode())
                progress.update(task, completed=written)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _chunks(
    app: App, failure_filter: FailureFilter, fmt: ExportFormat, payload: bool, reason: str
) -> Iterable[str]:
    return export_failures(
        app.store,
        failure_filter,
        fmt=fmt,
        actor=actor(),
        reason=reason,
        include_payload=payload,
    )
