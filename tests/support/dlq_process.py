"""A DLQ-only worker for crash tests:
`python -m tests.support.dlq_process URL FOLDER LEASE [SETTINGS]`.

It consumes `chart-processing-dlq` as `deadletter worker --dlq-only` does, with its
forensics in FOLDER/blobs and its DLQ log in FOLDER/dlq.log; SETTINGS, a JSON object,
replaces top-level settings of that config (an S3 blob store, alert targets). A hook
pauses briefly on every letter recorded, as a plugin that posts each event somewhere
would: it widens the window between a batch being recorded and the worker
acknowledging it, so that a SIGKILL often lands there and the batch comes back to be
recorded a second time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deadletter.app import App
from deadletter.config import settings_from_mapping

QUEUE = "chart-processing"
DLQ = f"{QUEUE}-dlq"
ROOT = Path(__file__).resolve().parents[2]
# Per letter recorded: a batch of BATCH letters spends about BATCH * PAUSE seconds here.
PAUSE = 0.002
BATCH = 100


def config(url: str, folder: Path, lease_seconds: float) -> dict[str, Any]:
    """Jobs of QUEUE are dead-lettered on their first failure; a letter has retries to
    spare, so that being on a killed worker a few times never parks it."""
    return {
        "database_url": url,
        "blob_url": str(folder / "blobs"),
        "worker": {"lease_seconds": lease_seconds, "poll_interval": 0.05, "batch_size": BATCH},
        "dlq": {"log_file": str(folder / "dlq.log")},
        "queues": {
            QUEUE: {"max_retries": 0, "backoff_base": 0.0},
            DLQ: {"max_retries": 50, "backoff_base": 0.0},
        },
    }


def build(url: str, folder: Path, lease_seconds: float, **settings: Any) -> App:
    return App(settings_from_mapping(config(url, folder, lease_seconds) | settings))


def start(url: str, folder: Path, lease_seconds: float, **settings: Any) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.support.dlq_process", url, str(folder)]
    return subprocess.Popen([*command, str(lease_seconds), json.dumps(settings)], cwd=ROOT)


def _pause(event: str, fields: dict[str, Any]) -> None:
    if event in ("dlq.handled", "dlq.duplicate"):
        time.sleep(PAUSE)


def main() -> None:
    url, folder, lease = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    app = build(url, folder, lease, **json.loads(sys.argv[4] if len(sys.argv) > 4 else "{}"))
    app.dlq.events.hooks.append(_pause)
    worker = app.worker(queues=[QUEUE], dlq_only=True)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()
    app.close()


if __name__ == "__main__":
    main()
