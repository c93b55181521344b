"""The spool of captured failures: durable files, oldest first, bounded, and a write
that fails leaves the batch in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from deadletter.integrations.spool import Spool, decode, encode
from deadletter.model import ErrorClass, HostAttempt, HostEvent, HostGaveUp, HostSucceeded, Origin

ATTEMPT = HostAttempt(
    "e1",
    "rq",
    "m1",
    1.0,
    2.0,
    "w",
    "ValueError",
    "bad",
    "Traceback",
    400,
    ErrorClass.USER_ERROR,
    "status:400",
)
GAVE_UP = HostGaveUp(
    ATTEMPT, Origin("rq", "q", "t", "m1", {"args": [1], "kwargs": {}}), "rq", "rq-dlq", 3, "why"
)
SUCCEEDED = HostSucceeded("e2", "rq", "m1", 3.0)
DOWN = ConnectionError("database is down")


@pytest.mark.parametrize("event", [ATTEMPT, GAVE_UP, SUCCEEDED])
def test_every_event_survives_its_file(event: HostEvent) -> None:
    assert decode(encode(event)) == event


def test_batches_are_written_oldest_first_and_a_failed_write_keeps_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit=10)
    spool.add([ATTEMPT], cause=DOWN)
    spool.add([GAVE_UP, SUCCEEDED], cause=DOWN)
    written: list[HostEvent] = []

    def broken(events: list[HostEvent]) -> None:
        raise DOWN

    with pytest.raises(ConnectionError):
        spool.drain(broken)
    assert spool.held() == 2
    assert spool.drain(written.extend) == 3
    assert written == [ATTEMPT, GAVE_UP, SUCCEEDED] and spool.held() == 0


def test_past_its_limit_the_spool_drops_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, limit=2)
    for _ in range(3):
        spool.add([ATTEMPT], cause=DOWN)
    assert spool.held() == 2
    assert "LOST" in caplog.text and "database is down" in caplog.text
