"""The blob store away for 10 s under a real DLQ worker process with 1,000 letters to
handle: an outage, not the letters' failure. No letter is charged or parked for it, one
ops alert says when it began and one when it ended, and every letter is handled once
after it (the folder replaced by a file: the handler's writes fail as on a volume gone)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from deadletter.model import JobState
from tests.contract.test_crash import wait_for
from tests.contract.test_dlq_handler import outage_alerts
from tests.contract.test_dlq_resilience import (
    check_each_letter_recorded_once,
    dead_letter,
    recorded,
)
from tests.support import dlq_process

LETTERS = 1000
OUTAGE = 10.0


def began(log: Path) -> bool:
    return log.exists() and '"dlq.outage_began"' in log.read_text()


def test_a_blob_folder_away_for_10_s_parks_and_charges_no_letter(
    store_url: str, tmp_path: Path
) -> None:
    app = dlq_process.build(store_url, tmp_path, 30.0)
    app.dlq.blobs.ensure()
    # The worker starts with its store up (a worker started during an outage stops at
    # once: it sets up its folder as it starts), and the folder goes before any letter.
    process = dlq_process.start(store_url, tmp_path, 30.0)
    try:
        assert wait_for(lambda: bool(app.store.live_workers(since=time.time() - 60)), 30)
        blobs, aside = tmp_path / "blobs", tmp_path / "blobs-aside"
        blobs.rename(aside)
        blobs.write_text("a file where the folder should be")
        faults = dead_letter(app, LETTERS)
        assert wait_for(lambda: began(tmp_path / "dlq.log"), 30)
        assert not wait_for(lambda: recorded(app) > 0, OUTAGE)
        letters = app.store.list_jobs(queue=dlq_process.DLQ, limit=2 * LETTERS)
        assert {(letter.status, letter.attempts) for letter in letters} == {(JobState.QUEUED, 0)}
        blobs.unlink()
        aside.rename(blobs)
        assert wait_for(lambda: recorded(app) == LETTERS, 60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
    check_each_letter_recorded_once(app, faults)
    letters = app.store.list_jobs(queue=dlq_process.DLQ, limit=2 * LETTERS)
    assert {letter.attempts for letter in letters} == {1}
    assert outage_alerts(app) == [
        "Dead letters wait: the blob store is down",
        "The blob store is back",
    ]
    events = [json.loads(line)["event"] for line in (tmp_path / "dlq.log").read_text().splitlines()]
    assert "dlq.step_failed" not in events and "dlq.parked" not in events
    app.close()
