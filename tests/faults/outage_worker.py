"""A worker process for the outage tests: `python -m tests.faults.outage_worker URL JOURNAL`.

Every job that runs appends `job_id pid start|ok time` to JOURNAL (O_APPEND writes of one
line are atomic), so that the test counts executions and times them after the fact.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.worker.slots import current_job

QUEUE = "outage"
TASK = "outage.work"
# Longer than any outage a test makes: a lease lost to the outage itself would make
# another worker run the job again, which is at-least-once, not what is tested here.
LEASE_SECONDS = 90.0


def build(url: str, journal: str) -> App:
    folder = Path(journal).parent
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(folder / "blobs"),
            "dlq": {"log_file": str(folder / "dlq.log")},
            "worker": {"lease_seconds": LEASE_SECONDS, "poll_interval": 0.05, "batch_size": 50},
            "queues": {QUEUE: {"backoff_base": 0.0}},
        }
    )
    app = App(settings)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(event: str) -> None:
        os.write(fd, f"{current_job.get().id} {os.getpid()} {event} {time.time():.6f}\n".encode())

    @app.task(name=TASK, queue=QUEUE)
    def work(n: int) -> None:
        note("start")
        time.sleep(0.002)
        note("ok")

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    app = build(sys.argv[1], sys.argv[2])
    worker = app.worker()
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()
    app.close()


if __name__ == "__main__":
    main()
