"""The files of the embedded backend, made private before SQLite opens them.

The database holds payloads, personal data and the audit log, so its folder is 0700
when deadletter creates it and its files (the database and SQLite's `-wal` and `-shm`)
are 0600: SQLite gives `-wal` and `-shm` the database file's own mode, so creating the
database file 0600 first is what keeps all three private. Files from older versions,
created under the usual umask (0644), are tightened when opened, with a log line.

A path mistake is one line naming the path and the problem, not a traceback, and a
new database is announced: a mistyped path would otherwise give an empty database
that looks like a quiet one.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from deadletter.errors import ConfigError

log = logging.getLogger("deadletter.store")

FOLDER_MODE = 0o700
FILE_MODE = 0o600
# deadletter's own folder (the default home): tightened if it is open to others.
OWN_FOLDER = ".deadletter"
SIDE_FILES = ("-wal", "-shm")


def prepare(path: Path) -> None:
    """Make sure `path` can be opened as a private SQLite database, creating it (and
    its folder) if needed."""
    if path.is_dir():
        raise ConfigError(
            f"SQLite database {path} is a folder; name a file in it, e.g. {path}/deadletter.db"
        )
    folder = path.parent
    _prepare_folder(folder)
    if not path.exists():
        _create(path)
        log.warning("created a new SQLite database at %s", path)
    for file in (path, *(path.with_name(path.name + side) for side in SIDE_FILES)):
        _tighten(file, FILE_MODE)


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"cannot use SQLite database in {folder}: it is a file, not a folder")
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=FOLDER_MODE)
        except FileExistsError:
            return  # another process made it meanwhile: theirs to have made private
        except OSError as exc:
            raise ConfigError(
                f"cannot create folder {folder} for the SQLite database: {exc.strerror}"
            ) from None
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode passes through the umask
        log.warning("created folder %s (mode 0700) for the SQLite database", folder)
    elif folder.resolve().name == OWN_FOLDER:
        _tighten(folder, FOLDER_MODE)


def _create(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return  # another process created it first: it is theirs to have made private
    except OSError as exc:
        raise ConfigError(f"cannot create SQLite database {path}: {exc.strerror}") from None
    os.close(descriptor)


def _tighten(path: Path, mode: int) -> None:
    """Take group and other rights away from `path`, if it exists and has any."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, current & mode)
    except OSError as exc:
        log.warning("could not make %s private (mode %03o): %s", path, current, exc.strerror)
        return
    log.warning("made %s private: mode %03o -> %03o", path, current, current & mode)
