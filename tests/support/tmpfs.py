"""A small tmpfs a test mounts in its own folder: a full disk, or a read-only one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.required import missing


@contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """`mount`, made and mounted as a tmpfs of `size` (e.g. "32m"), unmounted after."""
    if os.geteuid() != 0:
        missing("mounting a tmpfs needs root")
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def read_only(mount: Path) -> None:
    """Mount the tmpfs at `mount` again, read-only, with what it holds."""
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
