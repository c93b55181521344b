"""A command run in a pseudo-terminal, driven as a person at a keyboard drives it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Colours, cursor moves and carriage returns: what a terminal interprets, not text.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """`argv` with a pty for stdin, stdout and stderr, of `columns` x `rows`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        columns: int = 120,
        rows: int = 40,
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env={**env, "TERM": "xterm-256color"},
        )
        os.close(slave)  # the child holds it; ours would keep the pty open after it exits
        self.screen = ""  # what was shown and not yet matched by `expect`

    def expect(self, text: str, timeout: float = 15) -> str:
        """Wait until `text` is on the screen; what was shown up to the end of it."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen}")
        shown, _, self.screen = self.screen.partition(text)
        return shown + text

    def type(self, line: str) -> None:
        """Type `line` and press Enter."""
        os.write(self.master, line.encode() + b"\r")

    def close(self, timeout: float = 15) -> int:
        """Wait for the program to end, reading what it shows meanwhile; its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        os.close(self.master)
        return self.process.wait(timeout=1)

    def _read(self, timeout: float) -> bool:
        """Read what is shown within `timeout`; False when the program has ended."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return self.process.poll() is None
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed the terminal
            return False
        self.screen += CONTROL.sub("", data.decode(errors="replace"))
        return bool(data)
