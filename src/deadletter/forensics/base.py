"""The blob store contract: bytes under `/`-separated keys, one contract for every backend.

Keys are relative paths such as `failures/orders/2024-05-01/7f3a.json.gz`. They are
validated the same way on every backend, so that a key accepted by one is accepted by
all: no empty, `.` or `..` segments, no leading `/`, no backslashes, and no segment
ending in `TEMP_SUFFIX`, which marks the store's own in-flight objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from deadletter.errors import DeadletterError, InvalidArgument

# Backends name in-flight objects (temp files, probes) with this suffix and never list
# them; rejecting it in keys means no caller's blob can be mistaken for one.
TEMP_SUFFIX = ".deadletter-tmp"


class BlobStore(Protocol):
    """Where forensic records live. Every method raises `BlobStoreUnavailable` when the
    store cannot be reached, and `ValueError` for a malformed key."""

    @property
    def url(self) -> str:
        """Where the store is, without credentials: fit for logs and error messages."""

    def ensure(self) -> None:
        """Create the folder or bucket if missing. Idempotent."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically: readers see the old blob or the new one,
        never a part. Putting the same bytes again is harmless."""

    def put_many(self, blobs: Mapping[str, bytes]) -> dict[str, Exception]:
        """`put` every blob, as one durable batch where the backend can; returns the
        keys that failed with their error (`ValueError`, `BlobStoreError`), so that one
        bad key never fails the rest. Raises nothing itself."""

    def get(self, key: str) -> bytes:
        """The blob under `key`; `BlobNotFound` if there is none."""

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under `key`."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix` (a string prefix, not only a folder), sorted,
        fetched page by page."""

    def delete(self, key: str) -> None:
        """Remove the blob under `key`; a missing blob is not an error."""

    def check(self) -> None:
        """Prove the store can be written; `BlobStoreUnavailable` says what to fix."""


def validate_key(key: str) -> str:
    """`key`, unchanged, if it is a well-formed blob key; `InvalidArgument` (a
    ValueError) naming it if not."""
    problem = _key_problem(key)
    if problem:
        raise InvalidArgument(f"invalid blob key {key!r}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """`prefix`, unchanged, if some valid key could start with it."""
    # A trailing `/` ends a folder name; what comes before it must be a key in its own right.
    problem = _key_problem(prefix.removesuffix("/")) if prefix else None
    if problem:
        raise InvalidArgument(f"invalid blob key prefix {prefix!r}: {problem}")
    return prefix


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if key.startswith("/"):
        return "it must be relative (no leading '/')"
    if "\\" in key:
        return "use '/' to separate segments, not '\\'"
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            return "empty, '.' and '..' segments are not allowed"
        if segment.endswith(TEMP_SUFFIX):
            return f"segments ending in {TEMP_SUFFIX!r} are reserved"
    return None


def put_concurrently(
    put: Callable[[str, bytes], None], blobs: Mapping[str, bytes], workers: int
) -> dict[str, Exception]:
    """`put` each blob on up to `workers` threads: `put_many` for stores whose cost
    is a round trip per blob. Returns the keys that failed, with their error."""

    def attempt(item: tuple[str, bytes]) -> Exception | None:
        try:
            put(*item)
        except (ValueError, DeadletterError) as exc:
            return exc
        return None

    if len(blobs) <= 1:
        outcomes = [attempt(item) for item in blobs.items()]
    else:
        with ThreadPoolExecutor(min(workers, len(blobs))) as pool:
            outcomes = list(pool.map(attempt, blobs.items()))
    return {key: exc for key, exc in zip(blobs, outcomes, strict=True) if exc is not None}
