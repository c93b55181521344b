"""A worker process of fault tests: `python -m tests.faults.worker URL FOLDER ROLE LEASE`.

Its task journals each start and finish (tests.faults.journal) to FOLDER/journal.log,
fails at random, and, when asked, kills its own worker mid-run; the worker keeps the
default batch size, so such a job sits inside a full batch of innocent ones.
"""

from __future__ import annotations

import os
import posix
import random
import signal
import sys
import time
from pathlib import Path

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.worker.slots import current_job
from tests.faults import journal
from tests.support.worker_process import serve

QUEUE = "faults"
DLQ = f"{QUEUE}-dlq"
FAILURE_RATE = 0.2


def build(url: str, folder: Path, lease_seconds: float) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(folder / "blobs"),
            "dlq": {"log_file": str(folder / "dlq.log")},
            "worker": {"lease_seconds": lease_seconds, "poll_interval": 0.05},
            "queues": {QUEUE: {"backoff_base": 0.0, "max_retries": 3}},
        }
    )
    app = App(settings)
    path = str(folder / "journal.log")

    @app.task(name="faults.work", queue=QUEUE)
    def work(seed: int, kill: str = "", sleep: float = 0.0) -> None:
        journal.note(path, "start")
        time.sleep(sleep)
        if kill == "exit":
            # At once, as a crash would; not os._exit, which under `make coverage` saves
            # coverage's data first (a tenth of a second, in which another slot could
            # begin a job that the checker then finds charged).
            posix._exit(3)
        if kill == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if random.Random(f"{seed}-{current_job.get().attempt}").random() < FAILURE_RATE:
            journal.note(path, "fail")
            raise ConnectionResetError("injected failure")
        journal.note(path, "ok")

    return app


def main() -> None:
    url, folder, role, lease = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    serve(build(url, folder, lease), role)


if __name__ == "__main__":
    main()
