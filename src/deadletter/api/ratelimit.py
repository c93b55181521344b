"""How often one caller may ask: a token bucket per key, in this server's memory.

A key is a token's id, or a client address for requests without a valid token (so that
guessing tokens is limited too). Buckets are kept per process: behind a load balancer,
each server allows the rate on its own, which bounds a caller by `servers * rate`.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from deadletter.errors import InvalidArgument

# Past this many buckets, those that have refilled (idle callers) are dropped, so that
# a scan from many addresses cannot grow the table without bound.
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`rate` requests a second per key, `burst` at once; `rate = inf` allows all."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise InvalidArgument(
                f"a rate limit needs rate > 0 and burst >= 1, got {rate}, {burst}"
            )
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Take one request from `key`'s bucket: None when allowed, else the whole
        seconds to wait (for a `Retry-After` header)."""
        if math.isinf(self.rate):
            return None
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key) or self._add(key, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _add(self, key: str, now: float) -> Bucket:
        if len(self._buckets) >= MAX_BUCKETS:
            self._forget_idle(now)
        bucket = self._buckets[key] = Bucket(float(self.burst), now)
        return bucket

    def _forget_idle(self, now: float) -> None:
        full = self.burst / self.rate  # seconds for an empty bucket to refill
        idle = [key for key, b in self._buckets.items() if now - b.at >= full]
        for key in idle:
            del self._buckets[key]
