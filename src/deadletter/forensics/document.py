"""The forensic record of one failure: a compressed JSON document in the blob store.

Keyed by queue and day (`failures/<queue>/<YYYY-MM-DD>/<dead letter id>.json.gz`),
so listing a prefix lists a day. Identical tracebacks of successive attempts are
stored once: a job that timed out four times the same way costs one traceback.
"""

from __future__ import annotations

import gzip
import json
import platform
import socket
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from deadletter.model import JSON

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Host:
    """Where the handler ran, for the record."""

    hostname: str
    python: str
    deadletter: str

    @classmethod
    def current(cls) -> Host:
        return cls(socket.gethostname(), platform.python_version(), _version())


def key(queue: str, failed_at: float, dead_letter_id: str) -> str:
    day = time.strftime("%Y-%m-%d", time.gmtime(failed_at))
    return f"failures/{_safe(queue)}/{day}/{_safe(dead_letter_id)}.json.gz"


def document(
    letter: dict[str, JSON], *, classification: dict[str, str], fingerprint: str, host: Host
) -> dict[str, JSON]:
    return {
        "v": FORMAT_VERSION,
        "job": {k: letter.get(k) for k in ("job_id", "queue", "task", "payload", "labels")},
        "created_at": letter.get("created_at"),
        "reason": letter.get("reason"),
        "attempts": _attempts(letter.get("attempts") or []),
        "classification": classification,
        "fingerprint": fingerprint,
        "host": {"name": host.hostname, "python": host.python, "deadletter": host.deadletter},
    }


def encode(doc: dict[str, JSON]) -> bytes:
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
    # mtime=0 makes the bytes depend on the content only, so a re-put is identical.
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def decode(data: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(gzip.decompress(data))
    return loaded


def _attempts(attempts: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
    seen: dict[str, int] = {}
    compact = []
    for attempt in attempts:
        entry = {k: v for k, v in attempt.items() if v is not None and k != "traceback"}
        text = attempt.get("traceback")
        if isinstance(text, str) and text:
            if text in seen:
                entry["traceback_as_attempt"] = seen[text]
            else:
                seen[text] = int(attempt.get("number") or 0)
                entry["traceback"] = text
        compact.append(entry)
    return compact


def _safe(part: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in part)
    # "." and ".." are not names a blob store accepts as a key segment.
    return cleaned if cleaned.strip(".") else "_"


def _version() -> str:
    try:
        return metadata.version("deadletter")
    except metadata.PackageNotFoundError:
        return "unknown"
