"""deploy on a new database, archive and purge with their confirmation."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from deadletter.app import App
from tests.cli.conftest import Cli, command_env
from tests.conftest import MotoServer
from tests.support.operator import fail, table


def deploy(folder: Path, **settings: str) -> Cli:
    """A Cli whose settings are `settings` only, from the environment."""
    env = {f"DEADLETTER_{key.upper()}": value for key, value in settings.items()}
    return Cli(folder, {**command_env(), **env})


def test_deploy_migrates_creates_the_folder_and_verifies(
    empty_store_url: str, tmp_path: Path
) -> None:
    blobs = tmp_path / "forensics"
    cli = deploy(tmp_path, database_url=empty_store_url, blob_url=str(blobs))
    first = cli.ok("deploy")
    assert "0001_jobs" in first and "applied" in first and "total_failed" in first
    assert blobs.is_dir() and "is ready and writable" in first
    assert "database: up to date" in cli.ok("deploy")
    assert cli.json("stats")["dlq"]["total_failed"] == 0

    (tmp_path / "in-the-way").write_text("")
    broken = deploy(tmp_path, database_url=empty_store_url, blob_url=str(tmp_path / "in-the-way/x"))
    stopped = broken.run("deploy")
    assert stopped.returncode == 1
    assert "deploy stopped at the blob store" in stopped.stderr
    assert "next: check blob_url" in stopped.stderr


@pytest.mark.parametrize("empty_store_url", ["sqlite"], indirect=True)
def test_deploy_creates_the_bucket(
    empty_store_url: str, tmp_path: Path, moto_server: MotoServer, aws_credentials: None
) -> None:
    cli = deploy(
        tmp_path,
        database_url=empty_store_url,
        blob_url="s3://dlq-forensics/prod",
        s3_endpoint_url=moto_server.endpoint_url,
    )
    assert "s3://dlq-forensics/prod" in cli.ok("deploy")
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    assert "dlq-forensics" in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_archive_moves_old_failures_out_and_purge_removes_the_rest(
    cli: Cli, dlq_app: App, tmp_path: Path
) -> None:
    pending = fail(dlq_app, "charts.fetch", "tiles/1")  # waits for an operator: stays
    for detail in ("q1", "q2"):
        fail(dlq_app, "reports.build", "invalid", detail)
    assert cli.run("archive", "--older-than", "30").returncode == 2
    unasked = cli.run("archive", "--older-than", "0s")
    assert unasked.returncode == 2 and "nothing was changed" in unasked.stderr
    assert cli.json("archive", "--older-than", "30d", "--yes")["failures"] == 0
    assert _failures(dlq_app) == 3

    archived = cli.json("archive", "--older-than", "0s", "--yes")
    assert archived["failures"] == 2 and archived["removed"]["failures"] == 2
    assert [job for (job,) in table(dlq_app, "SELECT job_id FROM dlq_failures")] == [pending]
    [blob] = archived["blobs"]
    assert (tmp_path / "blobs" / blob).is_file()

    fail(dlq_app, "reports.build", "invalid", "q3")
    assert cli.json("purge", "--older-than", "0s", "--yes") == {"would_remove": 0}
    purged = cli.json("purge", "--older-than", "1h1m", "--include-unarchived", "--yes")
    assert purged == {"would_remove": 0}
    purged = cli.json("purge", "--older-than", "0s", "--include-unarchived", "--yes")
    assert purged["failures"] == 1 and _failures(dlq_app) == 1


def _failures(app: App) -> int:
    [(count,)] = table(app, "SELECT count(*) FROM dlq_failures")
    return int(count)
