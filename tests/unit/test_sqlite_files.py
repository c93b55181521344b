"""The embedded database's files: private from the first byte, and a path mistake told
in one line."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.errors import ConfigError
from deadletter.store.sqlite import SqliteStore
from deadletter.store.sqlite_files import prepare
from tests.support.tmpfs import read_only, tmpfs


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems have (0022), under which files are made readable by all."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def write_something(path: Path) -> None:
    store = SqliteStore(path)
    try:
        store.migrate()
    finally:
        store.close()


@pytest.mark.usefixtures("usual_umask")
def test_a_new_database_and_its_folder_are_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / ".deadletter" / "deadletter.db"
    write_something(path)
    assert mode(path.parent) == 0o700
    files = [path, path.with_name("deadletter.db-wal"), path.with_name("deadletter.db-shm")]
    store = SqliteStore(path)  # -wal and -shm exist while a connection is open
    try:
        store.migrate()
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
    finally:
        store.close()
    assert f"created a new SQLite database at {path}" in caplog.text


@pytest.mark.usefixtures("usual_umask")
def test_files_open_to_others_are_tightened_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / ".deadletter" / "deadletter.db"
    write_something(path)
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)
    caplog.clear()
    write_something(path)
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert f"made {path} private: mode 644 -> 600" in caplog.text
    assert "created" not in caplog.text


def test_a_folder_of_someone_else_is_left_as_it_is(tmp_path: Path) -> None:
    shared = tmp_path / "srv"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    write_something(shared / "deadletter.db")
    assert (mode(shared), mode(shared / "deadletter.db")) == (0o755, 0o600)


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("folder", "is a folder; name a file in it"),
        ("file/deadletter.db", "it is a file, not a folder"),
        ("file/deeper/deadletter.db", "cannot create folder"),
    ],
)
def test_a_path_mistake_names_the_path_and_the_problem(
    tmp_path: Path, where: str, problem: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match=problem) as raised:
        SqliteStore(tmp_path / where)
    assert str(tmp_path) in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__


def test_a_read_only_disk_is_told_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No new database can be made there; an old one open to others stays as it is,
    with a log line that says why (a database opened only to be read, as by a backup)."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        old = disk / "old.db"
        old.write_bytes(b"")
        os.chmod(old, 0o644)
        read_only(disk)
        prepare(old)
        assert f"could not make {old} private (mode 644)" in caplog.text
        assert mode(old) == 0o644
        with pytest.raises(ConfigError, match=f"cannot create SQLite database {disk}/new.db"):
            prepare(disk / "new.db")
