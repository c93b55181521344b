"""Structured DLQ events: one JSON line each, to the DLQ log and to hooks.

`deadletter logs` reads the log file. Hooks are plain callables; one that raises
is logged and skipped, so a broken plugin never stops the handler.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deadletter.redact import Redactor

Hook = Callable[[str, dict[str, Any]], None]

log = logging.getLogger("deadletter.dlq")


class EventLog:
    """Append-only JSON-lines log of DLQ events, redacted before it is written."""

    def __init__(self, path: Path | None, redactor: Redactor) -> None:
        self.path = path
        self.hooks: list[Hook] = []
        self._redactor = redactor
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def emit(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        safe = self._redactor.redact_value(record)
        line = json.dumps(safe, separators=(",", ":"), default=str)
        log.info(line)
        if self.path is not None:
            self._append(self.path, line)
        for hook in self.hooks:
            try:
                hook(event, dict(record))
            except Exception:  # a plugin's failure must not stop the handler
                log.exception("DLQ hook %r failed on %s", hook, event)

    def _append(self, path: Path, line: str) -> None:
        # O_APPEND makes each line one atomic write, even with several processes.
        with self._lock:
            if self._fd is None:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, (line + "\n").encode())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
