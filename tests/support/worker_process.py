"""A worker process for crash tests: `python -m tests.support.worker_process URL LOG ROLE`.

Every execution appends `job_id attempt pid role event` to LOG (O_APPEND writes of one
line are atomic), so the test can count executions after the workers are gone.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import DeadletterError
from deadletter.worker.slots import current_job

QUEUE = "crash"
FAILURE_RATE = 0.2


def build(url: str, log_path: str, role: str, lease_seconds: float) -> App:
    """The app of one role; its forensics and DLQ log go beside LOG, in the test's folder."""
    folder = Path(log_path).parent
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(folder / "blobs"),
            "dlq": {"log_file": str(folder / "dlq.log")},
            "worker": {"lease_seconds": lease_seconds, "poll_interval": 0.05, "batch_size": 50},
            "queues": {QUEUE: {"backoff_base": 0.0, "max_retries": 3}},
        }
    )
    app = App(settings)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(event: str) -> None:
        job = current_job.get()
        os.write(log, f"{job.id} {job.attempt} {os.getpid()} {role} {event}\n".encode())

    @app.task(name="crash.work", queue=QUEUE)
    def work(seed: int, sleep: float = 0.0) -> None:
        note("start")
        if sleep:
            time.sleep(sleep)
        if role == "doomed":
            note("fail")
            raise DeadletterError("this worker was frozen and must not win")
        rng = random.Random(f"{seed}-{current_job.get().attempt}")
        if rng.random() < FAILURE_RATE:
            note("fail")
            raise ConnectionResetError("injected failure")
        note("ok")

    return app


def main() -> None:
    url, log_path, role, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    serve(build(url, log_path, role, lease), role)


def serve(app: App, role: str) -> None:
    """Run `app`'s worker until SIGTERM (or, as a "burst" worker, until nothing is left)."""
    worker = app.worker()
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run(burst=role == "burst")
    app.close()


if __name__ == "__main__":
    main()
