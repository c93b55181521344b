"""SQLite's WAL does not keep the size of its largest burst (bounded storage, issue 13):
once a reader that held checkpoints back is gone, the store's next writes cut the file
back to `WAL_SIZE_LIMIT`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from deadletter.store.sqlite import WAL_SIZE_LIMIT, SqliteStore

BURST = WAL_SIZE_LIMIT + 16 * 2**20
COUNT_A_MINUTE = (
    "INSERT INTO dlq_stats_minutes (minute, shard, jobs) VALUES (0, 0, 1)"
    " ON CONFLICT (minute, shard) DO UPDATE SET jobs = jobs + 1"
)


def grow_wal_behind_a_reader(path: Path) -> None:
    """Write BURST bytes while another connection holds a read snapshot, so that no
    checkpoint can restart the log meanwhile."""
    writer = sqlite3.connect(path, isolation_level=None)
    reader = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE burst (x BLOB)")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM burst").fetchone()
    for _ in range(BURST // 2**20):
        writer.execute("INSERT INTO burst VALUES (zeroblob(1048576))")
    reader.execute("ROLLBACK")
    reader.close()
    writer.close()


def test_the_wal_is_cut_back_after_a_burst(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "burst.db")
    store.migrate()
    wal = tmp_path / "burst.db-wal"
    try:
        grow_wal_behind_a_reader(store.path)
        assert wal.stat().st_size > BURST
        for _ in range(2):  # the first checkpoints the log, the second restarts it
            with store.transaction() as execute:
                execute(COUNT_A_MINUTE, ())
        assert wal.stat().st_size <= WAL_SIZE_LIMIT
    finally:
        store.close()
