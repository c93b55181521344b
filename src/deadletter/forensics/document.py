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
from typing import Any, TypedDict

from deadletter.model import JSONObject, JSONValue

FORMAT_VERSION = 1


class Document(TypedDict):
    """A forensic record as `document` writes it (format 1). `job`, `created_at` and
    `reason` are copied from the dead letter as it is; `attempts` are its attempts
    with repeated tracebacks left out (`traceback_as_attempt` names the one kept)."""

    v: int
    job: JSONObject  # job_id, queue, task, payload, labels
    created_at: JSONValue
    reason: JSONValue
    attempts: list[JSONObject]
    classification: dict[str, str]  # class, rule
    fingerprint: str
    host: dict[str, str]  # name, python, deadletter


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
    letter: JSONObject, *, classification: dict[str, str], fingerprint: str, host: Host
) -> Document:
    attempts = letter.get("attempts")
    return {
        "v": FORMAT_VERSION,
        "job": {k: letter.get(k) for k in ("job_id", "queue", "task", "payload", "labels")},
        "created_at": letter.get("created_at"),
        "reason": letter.get("reason"),
        "attempts": _attempts(attempts if isinstance(attempts, list) else []),
        "classification": classification,
        "fingerprint": fingerprint,
        "host": {"name": host.hostname, "python": host.python, "deadletter": host.deadletter},
    }


def encode(doc: Document) -> bytes:
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
    # mtime=0 makes the bytes depend on the content only, so a re-put is identical.
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def decode(data: bytes) -> dict[str, Any]:
    """A record `encode` wrote, for display. Not a `Document`: the API's schema is read
    from where it is shown (ops/failures.py FailureDetails), and pydantic cannot follow
    the recursive JSON alias; it is a free-form object there."""
    loaded: dict[str, Any] = json.loads(gzip.decompress(data))
    return loaded


def _attempts(attempts: list[JSONValue]) -> list[JSONObject]:
    seen: dict[str, int] = {}
    compact: list[JSONObject] = []
    for attempt in attempts:
        fields = attempt if isinstance(attempt, dict) else {}
        entry: JSONObject = {k: v for k, v in fields.items() if v is not None and k != "traceback"}
        text = fields.get("traceback")
        if isinstance(text, str) and text:
            if text in seen:
                entry["traceback_as_attempt"] = seen[text]
            else:
                number = fields.get("number")
                seen[text] = number if isinstance(number, int) and number else 0
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
