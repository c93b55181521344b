"""`deadletter logs` (the seed's logs:dlq): the DLQ log, filtered, and followed with -f.

Lines are shown as the handler wrote them, redacted at writing; nothing here reads
anything else. Following survives log rotation (the file is renamed or removed and a new
one appears: the old one is read to its end, then the new one from its start) and
truncation (read again from the start), as `tail -F` does.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from deadletter.cli.context import settings
from deadletter.cli.views import when
from deadletter.config import Settings
from deadletter.errors import DeadletterError

POLL = 0.2
Match = Callable[[str], bool]


def logs(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Wait for new lines.")] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="Show this many last lines first.")
    ] = 20,
    event: Annotated[
        list[str] | None,
        typer.Option(help="Only this event (repeatable; wildcards: 'delivery.*')."),
    ] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", "-q", help="Only this queue and its DLQ.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print lines as written.")] = False,
) -> None:
    """Read the DLQ log (log_file in the dlq section of the settings), one event a line."""
    config = settings(ctx)
    path = Path(config.dlq.log_file)
    match = _matcher(config, event or [], queue)
    show = _printer(as_json)
    if not follow:
        if not path.exists():
            raise DeadletterError(
                f"there is no DLQ log at {path} yet: a worker handling dead letters writes it"
                " ([dlq] log_file sets where)"
            )
        with path.open("rb") as handle:
            for line in _last(handle, lines, match):
                show(line)
        return
    for line in _follow(path, lines, match):
        show(line)


def _matcher(config: Settings, events: list[str], queue: str | None) -> Match:
    queues = {queue, config.policy(queue).dlq_for(queue)} if queue else set()

    def match(line: str) -> bool:
        record = _record(line)
        if events and not any(fnmatch(str(record.get("event", "")), e) for e in events):
            return False
        return not queues or record.get("queue") in queues

    return match


def _record(line: str) -> dict[str, Any]:
    """The line's JSON object; empty for a line that is not one (matching no filter)."""
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _printer(as_json: bool) -> Callable[[str], None]:
    def show(line: str) -> None:
        # echo, not Rich: a line is data, never markup; echo also flushes each line.
        typer.echo(line.rstrip("\n") if as_json else _readable(line))

    return show


def _readable(line: str) -> str:
    """`time  event  key=value ...`; a line that is not an event, as it is."""
    record = _record(line)
    if "event" not in record:
        return line.rstrip("\n")
    at = record.pop("ts", None)
    fields = " ".join(f"{key}={_value(value)}" for key, value in record.items() if key != "event")
    stamp = when(at) if isinstance(at, int | float) else ""
    return f"{stamp}  {record['event']:<16} {fields}"


def _value(value: Any) -> str:
    """Text as it is; anything else as JSON (`false`, not Python's `False`)."""
    return value if isinstance(value, str) else json.dumps(value)


def _last(handle: IO[bytes], count: int, match: Match) -> deque[str]:
    """The last `count` matching lines, read in one pass that keeps only those."""
    return deque((text for text in map(_text, handle) if match(text)), maxlen=count)


def _text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def _follow(path: Path, count: int, match: Match) -> Iterator[str]:
    """The last `count` matching lines, then each whole matching line as it is
    appended, until interrupted."""
    handle = _wait_for(path)
    yield from _last(handle, count, match)
    partial = b""
    while True:
        partial += handle.readline()
        if partial.endswith(b"\n"):
            text, partial = _text(partial), b""
            if match(text):
                yield text
            continue
        handle = _reopened(path, handle)
        if handle.tell() == 0:
            partial = b""  # a new or truncated file: what was half read is gone
        time.sleep(POLL)


def _wait_for(path: Path) -> IO[bytes]:
    said = False
    while True:
        try:
            return path.open("rb")
        except FileNotFoundError:
            if not said:
                typer.echo(f"waiting for {path} to appear…", err=True)
                said = True
            time.sleep(POLL)


def _reopened(path: Path, handle: IO[bytes]) -> IO[bytes]:
    """At the end of `handle`: the new file if the log was rotated, the same file from
    its start if it was truncated, else `handle` as it is."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return handle  # rotated away and not created again yet: keep the old one
    # Said on stderr, as tail -F says it: lines may have been missed around the change.
    if now.st_ino != os.fstat(handle.fileno()).st_ino:
        typer.echo(f"{path} was replaced (rotated): following the new file", err=True)
        handle.close()
        return path.open("rb")
    if now.st_size < handle.tell():
        typer.echo(f"{path} was truncated: following from its start", err=True)
        handle.seek(0)
    return handle
