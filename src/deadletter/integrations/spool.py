"""A local spool for captured failures while deadletter's database cannot be reached.

One file per batch of events, written to a temporary name, fsynced and renamed, so that
a crash leaves either the whole batch or nothing. Bounded by a number of files: past
it a batch is dropped with an error in the log, rather than filling the host's disk.
Several processes (Celery's prefork children, say) share one spool. Batches are written
in the order they were spooled, by one process at a time (an flock on `.lock`), and a
process that finds batches waiting writes its own events after them, under the same
lock: a give-up is never written before an attempt of the same message spooled earlier
by another process. A batch written twice (a crash between the write and the unlink)
is recorded once: events carry their id.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from deadletter.config import Settings
from deadletter.errors import InvalidArgument
from deadletter.model import (
    ErrorClass,
    HostAttempt,
    HostEvent,
    HostGaveUp,
    HostSucceeded,
    Origin,
)

log = logging.getLogger("deadletter.integrations.spool")

SUFFIX = ".json"
LOCK = ".lock"
# While events wait in the spool, a background thread tries the database this often.
RETRY_SECONDS = 2.0


class Spool:
    """Events kept on local disk, oldest first, until they can be written."""

    def __init__(self, directory: Path, *, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self._retrier: threading.Thread | None = None
        self._guard = threading.Lock()  # flock serialises processes; this, threads
        self._starting = threading.Lock()

    @classmethod
    def for_system(cls, settings: Settings, system: str) -> Spool:
        return cls(Path(settings.spool_dir) / system, limit=settings.spool_limit)

    def add(self, events: Sequence[HostEvent], *, cause: BaseException) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        held = len(self._files())
        if held >= self.limit:
            log.error(
                "deadletter database unreachable (%s) and the spool %s is full (%d files):"
                " %d captured failure events are LOST; raise spool_limit or fix the database",
                _cause(cause),
                self.directory,
                held,
                len(events),
            )
            return
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        temporary = self.directory / f"{name}.tmp"
        with temporary.open("w") as handle:
            json.dump([encode(event) for event in events], handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(self.directory / f"{name}{SUFFIX}")
        log.warning(
            "deadletter database unreachable (%s): %d captured failure events spooled to %s"
            " (%d files held); they are written when it is back",
            _cause(cause),
            len(events),
            self.directory,
            held + 1,
        )

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool against every other process and thread while writing it out."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._guard, (self.directory / LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def drain(self, write: Callable[[list[HostEvent]], object]) -> int:
        with self.locked():
            return self.drain_locked(write)

    def drain_locked(self, write: Callable[[list[HostEvent]], object]) -> int:
        """Write every spooled batch, oldest first, holding the lock; stop at (and raise)
        the first error, leaving that batch and the later ones in place."""
        written = 0
        for path in self._files():
            events = [decode(item) for item in json.loads(path.read_text())]
            write(events)
            path.unlink()
            written += len(events)
        if written:
            log.info("wrote %d spooled events from %s", written, self.directory)
        return written

    def held(self) -> int:
        return len(self._files())

    def retry_in_background(self, write: Callable[[list[HostEvent]], object]) -> None:
        """Drain every few seconds until the spool is empty, in one daemon thread."""
        with self._starting:
            if self._retrier is not None and self._retrier.is_alive():
                return
            self._retrier = threading.Thread(
                target=self._retry, args=(write,), name="deadletter-spool", daemon=True
            )
            self._retrier.start()

    def _retry(self, write: Callable[[list[HostEvent]], object]) -> None:
        while self.held():
            time.sleep(RETRY_SECONDS)
            try:
                self.drain(write)
            except Exception as exc:  # still away: try again later
                log.debug("spool still waiting for the database: %s", _cause(exc))

    def _files(self) -> list[Path]:
        """Spooled batches, oldest first: their names begin with the time they were made."""
        if not self.directory.is_dir():
            return []
        return sorted(path for path in self.directory.iterdir() if path.name.endswith(SUFFIX))


def encode(event: HostEvent) -> dict[str, Any]:
    return {"kind": type(event).__name__, **asdict(event)}


def decode(item: dict[str, Any]) -> HostEvent:
    kind = item.pop("kind")
    if kind == "HostAttempt":
        return _attempt(item)
    if kind == "HostSucceeded":
        return HostSucceeded(**item)
    if kind == "HostGaveUp":
        return HostGaveUp(
            **{
                **item,
                "attempt": _attempt(item["attempt"]),
                "origin": Origin(**item["origin"]),
            }
        )
    raise InvalidArgument(f"unknown spooled event kind {kind!r}")


def _attempt(item: dict[str, Any]) -> HostAttempt:
    error_class = item.get("error_class")
    return HostAttempt(**{**item, "error_class": ErrorClass(error_class) if error_class else None})


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
