"""A worker's finished attempts by queue, as rates over each heartbeat interval."""

from __future__ import annotations

from deadletter.store.fleet import QueueRate
from deadletter.worker.rates import QueueRates


def test_rates_are_counts_over_the_time_since_the_last_take() -> None:
    rates = QueueRates(now=100.0)
    rates.add([("mail", True), ("mail", True), ("mail", False), ("charts", True)])
    rates.add([("mail", True)])

    assert rates.take(now=102.0) == {"mail": QueueRate(1.5, 0.5), "charts": QueueRate(0.5, 0.0)}


def test_a_take_starts_the_next_interval_afresh() -> None:
    rates = QueueRates(now=0.0)
    rates.add([("mail", True)] * 10)
    rates.take(now=1.0)
    rates.add([("mail", False)] * 4)

    assert rates.take(now=5.0) == {"mail": QueueRate(0.0, 1.0)}
    assert rates.take(now=6.0) == {}


def test_no_time_elapsed_gives_no_rate_rather_than_a_division_by_zero() -> None:
    rates = QueueRates(now=7.0)
    rates.add([("mail", True)])

    assert rates.take(now=7.0) == {}
