"""tests/support/processes.py: a child that ignores SIGTERM is killed, and the test told."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.support.processes import stop

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(60)"
)


def test_a_child_that_ignores_sigterm_is_killed_and_the_test_fails() -> None:
    child = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"

    with pytest.raises(AssertionError, match=r"did not exit within 0\.5 s of SIGTERM; killed"):
        stop(child, 0.5)

    assert child.returncode == -signal.SIGKILL
    child.stdout.close()


def test_a_child_that_exits_on_sigterm_is_waited_for() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    stop(child, 10)

    assert child.returncode == -signal.SIGTERM
