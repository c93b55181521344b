"""deadletter's database goes away while Celery fails tasks: Celery carries on as ever,
the captured failures wait in the spool, and are all written once the database is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from celery import Celery

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.model import JobState
from tests.hosts.conftest import HostWorker, Names, jobs_in, wait_for
from tests.hosts.test_celery import celery_worker

COUNT = 6


def test_failures_captured_while_the_database_is_away_are_written_when_it_is_back(
    redis_url: str,
    names: Names,
    tmp_path: Path,
    host_env: dict[str, str],
    start_host_worker: Callable[..., HostWorker],
) -> None:
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'deadletter.db'}"
    app = App(settings_from_mapping({"database_url": url, "blob_url": str(tmp_path / "blobs")}))
    app.store.migrate()
    app.close()
    host_env["DEADLETTER_DATABASE_URL"] = url
    worker = celery_worker(start_host_worker, redis_url, names)
    # The database goes away: its folder moves, and a file where it was keeps SQLite
    # from making a new one there.
    away = tmp_path / "db-away"
    folder.rename(away)
    folder.write_text("not a folder")
    client = Celery("dltest-client", broker=redis_url)
    for index in range(COUNT):
        client.send_task("hosts.work", args=["500", f"{names.prefix}-{index}"], queue=names.queue)
    spool = tmp_path / "spool" / "celery"
    wait_for(
        lambda: worker.log.read_text().count("deadletter database unreachable") >= COUNT * 3,
        timeout=60,
        what="every attempt of every task to be spooled",
        log=worker.log,
    )
    assert "Task hosts.work" in worker.log.read_text()  # Celery's own failure handling went on
    assert len(list(spool.glob("*.json"))) == COUNT * 3
    folder.unlink()
    away.rename(folder)  # the database is back
    app = App(settings_from_mapping({"database_url": url, "blob_url": str(tmp_path / "blobs")}))
    wait_for(
        lambda: len(jobs_in(app, "celery", JobState.DEAD_LETTERED)) == COUNT,
        timeout=30,
        what="the spooled failures to be written",
        log=worker.log,
    )
    for job in jobs_in(app, "celery", JobState.DEAD_LETTERED):
        assert [a.number for a in app.store.attempts(job.id)] == [1, 2, 3]
    assert list(spool.glob("*.json")) == []
    app.close()
    client.close()
