"""Error fingerprints: one key per cause, so that 10,000 failures show as one group.

A fingerprint hashes the exception type, the message with its variable parts (ids,
numbers, quoted values, times) replaced by placeholders, and the innermost frames of
the traceback without line numbers, so that an edit elsewhere in a file keeps its
groups.
"""

from __future__ import annotations

import hashlib
import json
import re

MESSAGE_LIMIT = 300

# Ids are often prefixed ("job_<hex>") and "_" is a word character, so an id is
# delimited by "no letter or digit" rather than by \b.
_ID_START, _ID_END = r"(?<![0-9a-z])", r"(?![0-9a-z])"
_UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
_DATE = r"\b\d{4}-\d{2}-\d{2}"
_TIME = r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"

# Order matters: a UUID holds hex runs and numbers, a URL or an email holds numbers,
# so the most structured patterns go first.
_REPLACEMENTS = tuple(
    (re.compile(pattern, re.IGNORECASE), placeholder)
    for pattern, placeholder in (
        (_ID_START + _UUID + _ID_END, "<uuid>"),
        (r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]*)\?[^\s#'\"]*", r"\1?<query>"),
        (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "<email>"),
        (_DATE + _TIME + r"(?![\w-])", "<time>"),
        # A quote that opens after a word character is an apostrophe ("can't").
        (r"(?<!\w)'[^'\n]*'|\"[^\"\n]*\"", "<str>"),
        (_ID_START + r"0x[0-9a-f]+" + _ID_END, "<hex>"),
        # A hex run has a letter (digits alone are a number, whatever their length)
        # and a digit (letters alone are a word).
        (_ID_START + r"(?=[0-9a-f]*[a-f])(?=[a-f]*\d)[0-9a-f]{8,}" + _ID_END, "<hex>"),
        (r"\d+(?:\.\d+)?", "<num>"),
        (r"\s+", " "),
    )
)

# The header of a traceback printed at the top level, not one nested in a group.
_TOP_TRACEBACK = re.compile(
    r"^(?:  \+ Exception Group )?Traceback \(most recent call last\):", re.M
)
# Where an exception group starts printing its sub-exceptions ("+-+---- 1 ----").
_SUB_EXCEPTIONS = re.compile(r"^\s*\+-\+----", re.M)
# A group's own frames are printed behind "|" rails.
_FRAME = re.compile(r'^[\s|]*File "(?P<file>[^"]*)", line \d+, in (?P<function>\S.*?)\s*$', re.M)


def normalise_message(message: str) -> str:
    """The message with its variable parts replaced by placeholders such as `<num>`."""
    for pattern, placeholder in _REPLACEMENTS:
        message = pattern.sub(placeholder, message)
    return message.strip()[:MESSAGE_LIMIT].rstrip()


def top_frames(traceback_text: str, count: int = 3) -> tuple[str, ...]:
    """The innermost `count` frames, innermost first, as `file_basename:function`.

    Frames are read from the last top-level traceback: in a chain ("During handling
    of the above exception...") that is the exception finally raised. Of an exception
    group only its own frames count, since its members' order can vary from run to run.
    """
    starts = [m.end() for m in _TOP_TRACEBACK.finditer(traceback_text)]
    last = traceback_text[starts[-1] :] if starts else traceback_text
    own = _SUB_EXCEPTIONS.split(last, maxsplit=1)[0]
    if count <= 0:
        return ()
    innermost = list(_FRAME.finditer(own))[-count:]
    return tuple(f"{_basename(m['file'])}:{m['function']}" for m in reversed(innermost))


def _basename(path: str) -> str:
    # Tracebacks from Windows workers carry backslashes.
    return re.split(r"[/\\]", path)[-1]


def fingerprint(error_type: str, message: str, traceback_text: str | None) -> str:
    """16 hex characters that are equal for failures with the same cause."""
    parts = [error_type, normalise_message(message), *top_frames(traceback_text or "")]
    # JSON keeps the parts apart: ("a", "bc") and ("ab", "c") hash differently.
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
