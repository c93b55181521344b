"""logs: the DLQ log as the handler wrote it, filtered, and followed like tail -F."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from deadletter.app import App
from deadletter.cli.logs import POLL
from tests.cli.conftest import Cli
from tests.support.operator import OTHER_Q, fail


class Lines:
    """The lines of a stream as they come, read on a thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in stream:
                self.lines.put(line)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, text: str, timeout: float = 15) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout}s") from None
            if text in line:
                return line


# The log is a file: one backend is enough to write it.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_logs_reads_filters_and_follows_the_dlq_log(cli: Cli, dlq_app: App, tmp_path: Path) -> None:
    first = fail(dlq_app, "charts.fetch", "tiles/1")
    user = fail(dlq_app, "reports.build", "invalid", "q3")
    log = tmp_path / "dlq.log"
    assert cli.ok("logs", "--json", "-n", "100").splitlines() == log.read_text().splitlines()
    only = [json.loads(line) for line in cli.ok("logs", "--json", "--queue", OTHER_Q).splitlines()]
    assert only and {record["job_id"] for record in only} == {user}
    readable = cli.ok("logs", "--event", "dlq.h*", "-n", "1")
    assert f"job_id={user}" in readable and "error_class=USER_ERROR" in readable
    assert first not in readable

    following = cli.popen("logs", "-f", "-n", "1", "--event", "dlq.handled", "--json")
    assert following.stdout is not None and following.stderr is not None
    shown, notices = Lines(following.stdout), Lines(following.stderr)
    shown.wait_for(user)  # the last line first: it is following now
    appended = fail(dlq_app, "charts.fetch", "tiles/2")
    assert json.loads(shown.wait_for(appended))["event"] == "dlq.handled"

    log.rename(tmp_path / "dlq.log.1")  # rotated; the handler opens a new file when told to
    dlq_app.dlq.events.close()
    shown.wait_for(fail(dlq_app, "charts.fetch", "tiles/3"))
    notices.wait_for("rotated")
    log.write_bytes(b"")
    notices.wait_for("truncated")
    shown.wait_for(fail(dlq_app, "charts.fetch", "tiles/4"))

    following.send_signal(signal.SIGINT)
    assert following.wait(timeout=10) == 130


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_logs_says_where_the_log_would_be_when_there_is_none(cli: Cli) -> None:
    missing = cli.run("logs")
    assert missing.returncode == 1 and "no DLQ log" in missing.stderr


HANDLED = {"event": "dlq.handled", "ts": 1_800_000_000, "queue": "charts.dlq", "job_id": "j1"}
DELIVERY = {"event": "delivery.failed", "queue": "charts.dlq", "ok": False}


def log_lines(*records: object) -> bytes:
    """Lines as the DLQ log holds them; a str is a line that is not JSON."""
    return b"".join(
        (record if isinstance(record, str) else json.dumps(record)).encode() + b"\n"
        for record in records
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_logs_shows_lines_that_are_not_events_as_they_are(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "dlq.log").write_bytes(log_lines(HANDLED, "a line of no JSON", [1], DELIVERY))
    shown = cli.ok("logs").splitlines()
    assert shown[1:3] == ["a line of no JSON", "[1]"]
    assert "job_id=j1" in shown[0] and "ok=false" in shown[3]
    only = cli.ok("logs", "--event", "delivery.*").splitlines()
    assert len(only) == 1 and "delivery.failed" in only[0]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_logs_follows_a_log_not_there_yet_and_one_removed_then_made_again(
    cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "dlq.log"
    following = cli.popen("logs", "-f", "--event", "dlq.handled", "--json")
    assert following.stdout is not None and following.stderr is not None
    shown, notices = Lines(following.stdout), Lines(following.stderr)
    notices.wait_for("to appear")
    time.sleep(3 * POLL)  # it looks again, and says so once
    log.write_bytes(log_lines({**HANDLED, "job_id": "j2"}))
    shown.wait_for("j2")
    with log.open("ab") as appending:
        appending.write(log_lines(DELIVERY, {**HANDLED, "job_id": "j3"}))
    assert json.loads(shown.wait_for("j3"))["job_id"] == "j3"  # the delivery line passed over
    log.unlink()
    time.sleep(3 * POLL)  # rotated away, no new file yet: it keeps the old one open
    log.write_bytes(log_lines({**HANDLED, "job_id": "j4"}))
    notices.wait_for("rotated")
    shown.wait_for("j4")
    assert notices.lines.empty()  # "waiting ... to appear" was said once
    following.send_signal(signal.SIGINT)
    assert following.wait(timeout=10) == 130
