"""Ending a test's child processes: a test never leaves one running."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM `process` and wait up to `timeout` seconds for it to exit. One that does
    not is killed, and the test fails: it did not stop when asked."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired as expired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"process {process.pid} ({process.args!r}) did not exit within {timeout:g} s"
            " of SIGTERM; killed"
        ) from expired
