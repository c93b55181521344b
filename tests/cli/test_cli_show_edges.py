"""`deadletter show` of the failures its first test does not meet: a job requeued with
a corrected payload that failed again, whose forensic record is gone, and a failure
adopted from another system with no traceback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from deadletter.app import App
from deadletter.integrations.core import Failed, Recorder
from deadletter.model import JobState, Origin
from deadletter.ops.recovery import requeue
from tests.cli.conftest import Cli
from tests.support.operator import fail, run_worker


def test_show_gives_earlier_failures_payload_history_and_a_missing_record(
    cli: Cli, dlq_app: App, tmp_path: Path
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    corrected = {"args": ["tiles/2"], "kwargs": {}}
    requeue(
        dlq_app.store,
        job_id,
        actor="tester",
        policy=dlq_app.policy,
        payload_limit=dlq_app.settings.payload_limit_bytes,
        payload=corrected,
    )
    run_worker(dlq_app)  # tiles/2 is no healthier: the job fails again
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
    shutil.rmtree(tmp_path / "blobs")

    screen = cli.ok("show", job_id)
    assert "earlier failures of this job (it was requeued):" in screen
    assert "payload replaced by tester" in screen and '"tiles/1"' in screen
    assert "forensic record: unavailable" in screen


def test_show_gives_an_adopted_failures_origin_without_a_traceback(cli: Cli, dlq_app: App) -> None:
    origin = Origin("celery", "default", "shop.charge", "msg-1", {"args": [7]})
    now = time.time()
    failed = Failed("msg-1", origin, RuntimeError("charge failed"), "", now, now, "host:1")
    Recorder(dlq_app, "celery").gave_up(failed, "retries exhausted")
    dlq_app.worker(queues=["celery"], dlq_only=True).run(burst=True)
    [job] = [j for j in dlq_app.store.list_jobs(queue="celery") if j.status is JobState.FAILED]

    screen = cli.ok("show", job.id)
    assert "celery queue default, task shop.charge, id msg-1" in screen
    assert '"args": [7]' in screen
    assert "last traceback" not in screen
