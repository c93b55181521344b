"""What an operator asks for: a filter on failures, checked values, and keyset pages.

The conditions a filter and a cursor stand for are written in the store
(store/failure_reads.py `matching`, store/query.py `after_key`). Pages are keyset pages,
newest first, with an opaque cursor: a page costs the same on the millionth row as on the
first, and a failure recorded meanwhile neither shifts nor repeats rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import astuple, dataclass, is_dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from deadletter.errors import InvalidRequest
from deadletter.model import ErrorClass
from deadletter.redact import SECRETS_ONLY
from deadletter.store import failure_reads
from deadletter.store.query import Clause, after_key, newest_first

T = TypeVar("T")

MAX_LIMIT = 1000
MAX_JOB_IDS = 1000


@dataclass(frozen=True, slots=True)
class FailureFilter:
    """Failures matching every field given; times are epoch seconds on `failed_at`,
    `since` inclusive and `until` exclusive. `text` is a case-insensitive substring of
    the message, the exception type or the job id. `fingerprint` selects one group;
    `labels` are (name, value) pairs the job's labels must all have, such as
    `("site_name", "berlin")`."""

    queue: str | None = None
    task: str | None = None
    error_class: str | None = None
    rule: str | None = None
    fingerprint: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    job_ids: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        self._check_types()
        check_error_class(self.error_class)
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidRequest("since", f"since ({self.since}) is after until ({self.until})")
        if len(self.job_ids) > MAX_JOB_IDS:
            raise InvalidRequest("job_ids", f"at most {MAX_JOB_IDS} job ids at once")

    def _check_types(self) -> None:
        # Held here, not only at the edges: `{"since": true}` taken for 1.0 would match
        # every failure, past the rule that an empty filter needs `all`.
        for name in ("queue", "task", "rule", "error_class", "fingerprint", "text"):
            if not isinstance(getattr(self, name), str | None):
                raise InvalidRequest(name, "must be text")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and math.isfinite(value)):
                raise InvalidRequest(name, "must be a finite number of epoch seconds")
        if not all(isinstance(job_id, str) for job_id in self.job_ids):
            raise InvalidRequest("job_ids", "must be text")
        if not all(isinstance(part, str) for label in self.labels for part in label):
            raise InvalidRequest("labels", "must be text")

    @property
    def is_empty(self) -> bool:
        """True when the filter matches every failure."""
        return not self.to_json()

    def to_json(self) -> dict[str, Any]:
        """The fields that are set, for the audit log and for display."""
        values = {
            "queue": self.queue,
            "task": self.task,
            "error_class": self.error_class,
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "since": self.since,
            "until": self.until,
            "text": self.text,
            "job_ids": list(self.job_ids),
            "labels": {name: value for name, value in self.labels},
        }
        return {name: value for name, value in values.items() if value not in (None, "", [], {})}

    def describe(self) -> str:
        """One line for people: `queue=a error_class=B since=2024-10-12T08:30:00Z`, or
        `all failures`. Times in UTC, not as the epoch seconds the filter holds. Without
        secrets: a search for `password=...` is shown, and kept as the audit log's target."""
        fields = self.shown()
        for name in ("since", "until"):
            if name in fields:
                fields[name] = _utc(fields[name])
        return " ".join(f"{k}={v}" for k, v in fields.items()) or "all failures"

    def shown(self) -> dict[str, Any]:
        """`to_json()` without secrets: what a status or a record may show of the filter."""
        return cast(dict[str, Any], SECRETS_ONLY.redact_value(self.to_json()))

    def clauses(self) -> list[Clause]:
        return failure_reads.matching(
            queue=self.queue,
            task=self.task,
            error_class=self.error_class,
            rule=self.rule,
            fingerprint=self.fingerprint,
            since=self.since,
            until=self.until,
            text=self.text,
            job_ids=self.job_ids,
            labels=self.labels,
        )


def _utc(epoch: float) -> str:
    """`epoch` in UTC; as epoch seconds when no calendar date holds it (a filter may
    say since=-4e16, and must still be described, not fail)."""
    try:
        at = datetime.fromtimestamp(epoch, UTC)
    except (ValueError, OverflowError, OSError):
        return f"{epoch:g}"
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_error_class(value: str | None) -> str | None:
    known = [c.value for c in ErrorClass]
    if value is not None and value not in known:
        raise InvalidRequest("error_class", f"unknown class {value!r}; known: {', '.join(known)}")
    return value


def required(value: str, field: str) -> str:
    """`value` stripped; an InvalidRequest naming `field` when it is blank."""
    if not value or not value.strip():
        raise InvalidRequest(field, "is required and may not be blank")
    return value.strip()


def operator_text(text: str) -> str:
    """Text an operator typed (a reason, a note), as it is stored: stripped, and without
    secrets. A card number or a `password=` pasted into a reason would otherwise sit in
    the audit log for every `read` token to page through."""
    return SECRETS_ONLY.redact_text(text.strip())


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page, newest first; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None


# What a cursor may be: longer ones are not cursors this API returned (ids are short).
MAX_CURSOR = 500
# An integer tie-breaker beyond 64 bits is no row's id, and no database takes it.
MAX_INT_KEY = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Keyset:
    """Newest-first keyset order over a time column and a unique tie-breaker whose
    values are of `id_type`, for the list called `name`.

    A cursor carries a tag of its list and of the scope it was read under (the filter):
    one used with another list or another filter would silently page through rows the
    caller did not ask for, so it is refused instead."""

    name: str
    time: str
    id: str
    id_type: type[str] | type[int] = str

    @property
    def order_by(self) -> str:
        return newest_first(self.time, self.id)

    def after(self, cursor: str | None, scope: object = None) -> list[Clause]:
        """The clause for rows after `cursor`: the first bound lets an index range serve it."""
        if cursor is None:
            return []
        at, key, tag = decode_cursor(cursor)
        # The type check first: a forged tag cannot make PostgreSQL compare text with a
        # number, which it refuses with an error rather than an empty page.
        if not isinstance(key, self.id_type) or tag != self._tag(scope):
            raise InvalidRequest(
                "cursor", "belongs to another list or filter: ask for the first page again"
            )
        return [after_key(self.time, self.id, at, key)]

    def page(
        self,
        items: list[T],
        limit: int,
        key: Callable[[T], tuple[float, Any]],
        scope: object = None,
    ) -> Page[T]:
        """`items` read with `LIMIT limit + 1`: one more than the page says there is a next."""
        if len(items) <= limit:
            return Page(items, None)
        kept = items[:limit]
        return Page(kept, self.cursor(key(kept[-1]), scope))

    def cursor(self, last: tuple[float, str | int], scope: object = None) -> str:
        """The cursor of the rows after `last` (time, id) in this list under `scope`."""
        text = json.dumps([*last, self._tag(scope)], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def _tag(self, scope: object) -> str:
        # Short: it need only tell lists and filters apart, not resist forgery (a forged
        # cursor reaches nothing its holder could not ask for without one).
        text = json.dumps([self.name, scope], sort_keys=True, default=_plain)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _plain(value: object) -> object:
    """A scope's value as JSON: a dataclass (a filter) by its fields, an enum by value."""
    if is_dataclass(value) and not isinstance(value, type):
        return astuple(value)
    return getattr(value, "value", repr(value))


def decode_cursor(cursor: str) -> tuple[float, str | int, str]:
    """A cursor's time, tie-breaker and tag; InvalidRequest if it is not one this API made."""
    if not 0 < len(cursor) <= MAX_CURSOR:
        raise InvalidRequest(
            "cursor", f"is not a cursor this API returned (1 to {MAX_CURSOR} characters)"
        )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key, tag = json.loads(raw, parse_constant=_no_constant)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InvalidRequest("cursor", "is not a cursor this API returned") from exc
    if not (_is_number(at) and math.isfinite(at) and _is_key(key) and isinstance(tag, str)):
        raise InvalidRequest("cursor", "is not a cursor this API returned")
    return float(at), key, tag


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a cursor holds")


def _is_key(key: object) -> bool:
    if isinstance(key, int) and not isinstance(key, bool):
        return abs(key) <= MAX_INT_KEY
    return isinstance(key, str)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
