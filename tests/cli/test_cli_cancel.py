"""`deadletter cancel` as an operator runs it, on every backend."""

from __future__ import annotations

import threading

from deadletter.app import App
from tests.cli.conftest import Cli
from tests.support.operator import in_thread, polling


def test_cancel_by_filter_after_a_dry_run_and_a_refused_id(cli: Cli, dlq_app: App) -> None:
    spec = dlq_app.tasks["charts.fetch"].spec
    ids = [dlq_app.enqueue(spec(f"tiles/{i}").options(delay=3600)) for i in range(2)]
    base = ["cancel", "--queue", "charts", "--reason", "bad deploy"]

    dry = cli.json(*base, "--dry-run", "--json")
    assert dry["dry_run"] and sorted(j["id"] for j in dry["jobs"]) == sorted(ids)
    assert all(dlq_app.store.get_job(i) is not None for i in ids)

    assert "cancelled 2 job(s)" in cli.ok(*base)
    assert [dlq_app.store.get_job(i) for i in ids] == [None, None]

    refused = cli.run("cancel", ids[0], "--reason", "again")
    assert refused.returncode == 1 and f"no job {ids[0]}" in refused.stdout
    assert cli.run("cancel", "--reason", "everything").returncode == 2


def test_cancel_a_running_job_after_a_dry_run(cli: Cli, dlq_app: App) -> None:
    started, told = threading.Semaphore(0), dict[str, bool]()
    polling(dlq_app, started, told)
    job_id = dlq_app.tasks["charts.render"].enqueue("return")
    thread = in_thread(dlq_app.worker(dlq=False, lease_seconds=1.5))
    assert started.acquire(timeout=30)

    dry = cli.ok("cancel", job_id, "--reason", "runaway", "--dry-run")
    assert f"would ask {job_id} to stop (charts.render on charts, running)" in dry
    assert "asked 1 running job(s) to stop" in cli.ok("cancel", job_id, "--reason", "runaway")
    thread.join(60)
    assert told == {"return": True} and dlq_app.store.get_job(job_id) is None
