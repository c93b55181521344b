"""`deadletter demo` as a newcomer runs it: a fresh folder, the embedded default."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

DEMO = [sys.executable, "-c", "from deadletter.cli import main; main()", "demo", "--jobs", "60"]


def test_demo_runs_the_seed_flow_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    done = subprocess.run(
        DEMO, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    assert '"total_failed": 27' in done.stdout and '"job_id": "job_' in done.stdout
    # The story, one sentence per class, and where to go next.
    for said in (
        "This run: 33 of 60 jobs succeeded",
        "9 RECOVERABLE (rate-limit, timeout): retried 3 times, then put in the recovery",
        "9 USER_ERROR (client-error, invalid-input): not retried",
        "6 SYSTEM_ERROR (server-error): retried 3 times, then ops were alerted",
        "3 UNKNOWN (KeyError): retried 3 times, then written to the review log",
        "deadletter failures",
        "deadletter recover",
        "deadletter serve",
        "the dashboard at http://127.0.0.1:8787/ and the HTTP API",
    ):
        assert said in " ".join(done.stdout.split()), said
    assert len(done.stdout.splitlines()) < 70
    assert "created a new SQLite database at .deadletter/deadletter.db" in done.stderr

    with sqlite3.connect(tmp_path / ".deadletter" / "deadletter.db") as db:
        states = Counter(
            dict(
                db.execute(
                    "SELECT status, count(*) FROM queue_jobs WHERE queue = ? GROUP BY 1",
                    ("chart-processing",),
                )
            )
        )
        classes = dict(db.execute("SELECT error_class, count(*) FROM dlq_failures GROUP BY 1"))
        keys = [key for (key,) in db.execute("SELECT forensics_key FROM dlq_failures")]
    assert states == {"succeeded": 33, "failed": 27}
    assert set(classes) == {"RECOVERABLE", "USER_ERROR", "SYSTEM_ERROR", "UNKNOWN"}
    blobs = tmp_path / ".deadletter" / "forensics"
    records = [json.loads(gzip.decompress((blobs / key).read_bytes())) for key in keys]
    assert len(records) == 27 and all(len(r["attempts"]) >= 1 for r in records)
    assert all((blobs / key).stat().st_size < 1024 for key in keys)

    again = subprocess.run(
        DEMO, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    # This run's figures are this run's; the totals say they are totals.
    assert "This run: 33 of 60 jobs succeeded" in again.stdout
    assert "totals of every run so far" in again.stdout
    assert '"total_failed": 54' in again.stdout
