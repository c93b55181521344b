"""What a payload may be: plain JSON, UTF-8 text, at most `MAX_DEPTH` deep, within a
size limit. Held at enqueue, at a requeue with a corrected payload (API and CLI), and
on every JSON body the API reads."""

from __future__ import annotations

import json
from typing import Any

from deadletter.errors import PayloadError

# Deeper JSON is refused: Python's json and pydantic's serialiser give up at a few
# hundred levels (a job stored deeper could never be shown again), and no task's
# arguments need a tenth of this.
MAX_DEPTH = 64

# json.dumps with options would build an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def encode_payload(payload: dict[str, Any], *, limit: int, what: str) -> str:
    """The payload as JSON text, if it is plain JSON within `limit` bytes; `what`
    names it in the error (`payload of task x`)."""
    try:
        text = _ENCODER.encode(payload)
        size = len(text.encode())
    except (TypeError, ValueError, RecursionError) as exc:
        # UnicodeEncodeError (a lone surrogate) is a ValueError.
        raise PayloadError(
            f"{what} is not JSON: {exc}. Pass plain JSON values"
            " (str, int, float, bool, None, lists, dicts with str keys)."
        ) from exc
    # Counting brackets is C-fast; only a payload with many is walked for its depth.
    if text.count("[") + text.count("{") > MAX_DEPTH and (problem := json_problem(payload)):
        raise PayloadError(f"{what} {problem}")
    if size > limit:
        raise PayloadError(
            f"{what} is {size} bytes, over the limit of {limit} bytes;"
            " store large data elsewhere (e.g. the blob store) and pass its key,"
            " or raise payload_limit_bytes in deadletter.toml"
        )
    return text


def json_problem(value: object) -> str | None:
    """Why `value` (parsed JSON) is not taken: too deep, or text that is not UTF-8."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return f"nests deeper than {MAX_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and not _is_utf8(item):
            return "holds text that is not Unicode (an unpaired surrogate, \\ud800-\\udfff)"
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
