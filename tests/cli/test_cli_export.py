"""export: every format round-trips to what the failures are, streamed to stdout or a file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from deadletter.app import App
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.failures import list_failures
from tests.cli.conftest import USER, Cli
from tests.support.operator import run_worker


def test_export_round_trips_in_every_format(cli: Cli, dlq_app: App, tmp_path: Path) -> None:
    build = dlq_app.tasks["reports.build"]
    for kind, detail in [("invalid", "q3"), ("server_error", "7"), ("mystery", 'a "b",\nc')]:
        dlq_app.enqueue(build.spec(kind, detail))
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    run_worker(dlq_app)
    expected = [item.to_json() for item in list_failures(dlq_app.store).items]
    assert len(expected) == 4

    lines = cli.ok("export", "--reason", "audit").splitlines()
    assert [json.loads(line) for line in lines] == expected
    cli.ok("export", "--reason", "audit", "--format", "json", "--output", "all.json")
    assert json.loads((tmp_path / "all.json").read_text()) == expected
    cli.ok("export", "--reason", "audit", "--format", "csv", "-o", "all.csv")
    with (tmp_path / "all.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["error_message"] for row in rows] == [e["error_message"] for e in expected]
    assert [json.loads(row["labels"]) for row in rows] == [e["labels"] for e in expected]

    unknown = cli.ok("export", "--class", "UNKNOWN", "--include-payload", "--reason", "audit")
    [record] = [json.loads(line) for line in unknown.splitlines()]
    assert record["payload"] == {"args": ["mystery", 'a "b",\nc'], "kwargs": {}}
    exports = audit_entries(dlq_app.store, action=AuditAction.EXPORT).items
    assert len(exports) == 4 and {entry.actor for entry in exports} == {f"cli:{USER}"}
    assert exports[0].details["include_payload"] is True and exports[0].reason == "audit"
    assert not list(tmp_path.glob("*.part"))
