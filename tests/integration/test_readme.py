"""The README's code does what it says: every line that looks like an enqueue enqueues
(the worker finding `myjobs.py` beside it is tests/cli/test_cli_startup.py's)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_enqueues_every_job_it_builds(tmp_path: Path) -> None:
    # The third block, an enqueue in the caller's PostgreSQL transaction, is a fragment
    # (tests/contract/test_enqueue_in_transaction.py runs it).
    module, producer = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[:2]
    (tmp_path / "myjobs.py").write_text(module)
    (tmp_path / "deadletter.toml").write_text(
        f'database_url = "sqlite:///{tmp_path / "deadletter.db"}"\n'
        f'blob_url = "{tmp_path / "blobs"}"\n[dlq]\nlog_file = "{tmp_path / "dlq.log"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    done = subprocess.run(
        [sys.executable, "-c", producer],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "deadletter.db") as db:
        rows = db.execute("SELECT priority, labels FROM queue_jobs").fetchall()
    assert len(rows) == 1 + 1000 + 1
    assert (5, '{"site_name":"building-b"}') in rows
