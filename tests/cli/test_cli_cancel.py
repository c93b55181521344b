"""`deadletter cancel` as an operator runs it, on every backend."""

from __future__ import annotations

from deadletter.app import App
from tests.cli.conftest import Cli


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
