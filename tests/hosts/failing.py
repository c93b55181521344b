"""What the host systems' test tasks do: fail in every class, unless their key is healthy.

Health lives in Redis (`<prefix>:healthy:<key>`), so that a test can let a task that
failed succeed when it is re-driven, whatever process and host system runs it.
"""

from __future__ import annotations

import os
import time

import redis

from deadletter.model import ErrorClass

# kind -> (class deadletter gives it, attempts the host makes: 400 and 404 are not retried)
EXPECTED: dict[str, tuple[ErrorClass, int]] = {
    "timeout": (ErrorClass.RECOVERABLE, 3),
    "429": (ErrorClass.RECOVERABLE, 3),
    "400": (ErrorClass.USER_ERROR, 1),
    "404": (ErrorClass.USER_ERROR, 1),
    "500": (ErrorClass.SYSTEM_ERROR, 3),
    "502": (ErrorClass.SYSTEM_ERROR, 3),
    "unexpected": (ErrorClass.UNKNOWN, 3),
}
RETRIES = 2  # every host retries twice: three attempts
TIME_LIMIT = 0.5  # seconds; the "timeout" task sleeps past it


class HTTPError(Exception):
    """An HTTP error as clients raise them: a status and, for 429, a Retry-After."""

    def __init__(self, status_code: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(status_code, reason, retry_after)
        self.status_code = status_code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.args[1]}"


class ClientError(HTTPError):
    """A 4xx other than 429: retrying the same request cannot help, so hosts do not."""


REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}


def healthy(key: str) -> bool:
    prefix = os.environ["DL_TEST_PREFIX"]
    client = redis.Redis.from_url(os.environ["DL_TEST_REDIS"])
    try:
        return bool(client.exists(f"{prefix}:healthy:{key}"))
    finally:
        client.close()


def work(kind: str, key: str) -> str:
    if kind == "ok" or healthy(key):
        return f"{key} done"
    if kind == "timeout":
        # Short sleeps: Dramatiq's time limit interrupts between bytecodes, not in a C call.
        for _ in range(50):
            time.sleep(TIME_LIMIT / 5)
    if kind == "unexpected":
        raise KeyError(f"series_{key}")
    status = int(kind)
    if status in (400, 404):
        raise ClientError(status, "Bad Request" if status == 400 else "Not Found")
    raise HTTPError(status, REASONS[status], retry_after=0.2 if status == 429 else None)
