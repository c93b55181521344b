"""The API's rate limiter at its edges: limits it cannot keep are refused, and a scan from
many addresses grows its table no further than the idle callers allow."""

from __future__ import annotations

import pytest

from deadletter.api.ratelimit import MAX_BUCKETS, RateLimiter
from deadletter.errors import InvalidArgument


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_a_limit_that_allows_nothing_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(InvalidArgument, match="rate > 0 and burst >= 1"):
        RateLimiter(rate, burst)


def test_a_full_table_forgets_the_callers_whose_buckets_refilled() -> None:
    # A billion a second: every bucket has refilled by the time the next key comes.
    limiter = RateLimiter(1e9, 1)
    for n in range(MAX_BUCKETS):
        assert limiter.retry_after(f"10.0.{n // 256}.{n % 256}") is None
    assert len(limiter._buckets) == MAX_BUCKETS
    assert limiter.retry_after("one more") is None
    assert len(limiter._buckets) < MAX_BUCKETS


def test_a_scan_does_not_reset_a_busy_callers_bucket() -> None:
    limiter = RateLimiter(0.001, 1)  # a bucket takes 1000 s to refill: none is idle
    assert limiter.retry_after("busy") is None
    assert limiter.retry_after("busy") == 1000
    for n in range(MAX_BUCKETS):
        limiter.retry_after(f"10.0.{n // 256}.{n % 256}")
    assert limiter.retry_after("busy") is not None
    assert len(limiter._buckets) == MAX_BUCKETS + 1
