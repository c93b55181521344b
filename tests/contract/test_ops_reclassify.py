"""Re-classify on every backend: a dry run changes nothing, a run moves each failure whose
class changed to its new route, audited, and no notification or alert is raised twice."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from deadletter.app import App
from deadletter.classify import Rule
from deadletter.errors import InvalidRequest
from deadletter.model import ErrorClass
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.reclassify import Reclassification, reclassify
from tests.support.operator import Downstream, fail, recovery_status, table

TIMEOUTS_ARE_OURS = Rule("timeouts-are-ours", ErrorClass.SYSTEM_ERROR, ("TimeoutError",))
KEY_ERRORS_ARE_INPUT = Rule("bad-series", ErrorClass.USER_ERROR, ("KeyError",))
SERVER_ERRORS_UNKNOWN = Rule("500-unknown", ErrorClass.UNKNOWN, http_statuses=frozenset({500}))


@pytest.fixture
def failed(dlq_app: App, downstream: Downstream) -> dict[str, str]:
    """One failure routed each way by the default rules: recovery, ops, review."""
    return {
        "timeout": fail(dlq_app, "charts.fetch", "tiles/1"),
        "server_error": fail(dlq_app, "reports.build", "server_error", "n7"),
        "mystery": fail(dlq_app, "reports.build", "mystery", "q3"),
    }


@pytest.fixture
def with_rules(dlq_app: App) -> Iterator[list[App]]:
    """Operators' apps over the same database, made by `rules_app`; closed at the end."""
    apps: list[App] = []
    yield apps
    for app in apps:
        app.close()


def run(
    apps: list[App], base: App, *rules: Rule, dry_run: bool = False, window: float = 0.0
) -> Reclassification:
    """Re-classify with `rules` before the defaults. `window` 0: no alert folds into
    an earlier one, so that each raised is seen."""
    dlq = replace(base.settings.dlq, alert_window_seconds=window)
    app = App(replace(base.settings, dlq=dlq), rules=rules)
    apps.append(app)
    return reclassify(
        app.store, app.dlq.handler, actor="ana", reason="timeouts are our bug", dry_run=dry_run
    )


def classes(app: App) -> dict[str, str]:
    return dict(table(app, "SELECT job_id, error_class FROM dlq_failures"))


def counts(app: App) -> tuple[int, int, int]:
    [(alerts,)] = table(app, "SELECT count(*) FROM ops_alerts")
    [(notes,)] = table(app, "SELECT count(*) FROM user_notifications")
    [(reviews,)] = table(app, "SELECT count(*) FROM dlq_review_log")
    return alerts, notes, reviews


def test_a_dry_run_says_what_would_move_and_changes_nothing(
    dlq_app: App, failed: dict[str, str], with_rules: list[App]
) -> None:
    before = (classes(dlq_app), counts(dlq_app))
    done = run(with_rules, dlq_app, TIMEOUTS_ARE_OURS, KEY_ERRORS_ARE_INPUT, dry_run=True)
    assert done.dry_run and done.examined == 3
    assert done.counts == {"RECOVERABLE->SYSTEM_ERROR": 1, "UNKNOWN->USER_ERROR": 1}
    assert {m.job_id: m.route for m in done.moves} == {
        failed["timeout"]: "alert_ops",
        failed["mystery"]: "notify_user",
    }
    assert (classes(dlq_app), counts(dlq_app)) == before
    assert recovery_status(dlq_app, failed["timeout"]) == "pending"
    assert audit_entries(dlq_app.store, action=AuditAction.RECLASSIFY).items == []


def test_a_run_moves_each_changed_failure_to_its_new_route_once_and_audits_it(
    dlq_app: App, failed: dict[str, str], with_rules: list[App]
) -> None:
    alerts, notes, reviews = counts(dlq_app)
    done = run(with_rules, dlq_app, TIMEOUTS_ARE_OURS, KEY_ERRORS_ARE_INPUT)
    assert not done.dry_run and len(done.moves) == 2
    assert classes(dlq_app) == {
        failed["timeout"]: "SYSTEM_ERROR",
        failed["server_error"]: "SYSTEM_ERROR",
        failed["mystery"]: "USER_ERROR",
    }
    # Off the recovery queue, onto the ops' desk; the user told; the review log keeps its past.
    assert recovery_status(dlq_app, failed["timeout"]) is None
    [(alert_job,)] = table(
        dlq_app, "SELECT body FROM ops_alerts ORDER BY created_at DESC, id DESC LIMIT 1"
    )
    assert failed["timeout"] in alert_job
    assert counts(dlq_app) == (alerts + 1, notes + 1, reviews)
    [(noted,)] = table(dlq_app, "SELECT job_id FROM user_notifications")
    assert noted == failed["mystery"]
    entries = audit_entries(dlq_app.store, action=AuditAction.RECLASSIFY).items
    assert {(e.target, e.details["from"], e.details["to"]) for e in entries} == {
        (failed["timeout"], "RECOVERABLE", "SYSTEM_ERROR"),
        (failed["mystery"], "UNKNOWN", "USER_ERROR"),
    }
    assert {e.actor for e in entries} == {"ana"}
    again = run(with_rules, dlq_app, TIMEOUTS_ARE_OURS, KEY_ERRORS_ARE_INPUT)
    assert again.moves == [] and again.examined == 3
    assert counts(dlq_app) == (alerts + 1, notes + 1, reviews)


def test_a_failure_moved_away_and_back_raises_no_second_alert_or_notification(
    dlq_app: App, failed: dict[str, str], with_rules: list[App]
) -> None:
    before = counts(dlq_app)
    away = run(with_rules, dlq_app, SERVER_ERRORS_UNKNOWN, KEY_ERRORS_ARE_INPUT)
    assert away.counts == {"SYSTEM_ERROR->UNKNOWN": 1, "UNKNOWN->USER_ERROR": 1}
    back = run(with_rules, dlq_app)
    assert back.counts == {"UNKNOWN->SYSTEM_ERROR": 1, "USER_ERROR->UNKNOWN": 1}
    after_one_round = counts(dlq_app)
    # The server error back on the ops' route: one system error alert, about it.
    assert after_one_round[:2] == (before[0] + 1, before[1] + 1)
    for rules in ((SERVER_ERRORS_UNKNOWN, KEY_ERRORS_ARE_INPUT), ()):
        assert len(run(with_rules, dlq_app, *rules).moves) == 2
    # Moved away and back again: the same notification and alert, not raised twice.
    assert counts(dlq_app) == after_one_round


def test_an_alert_within_the_window_takes_the_moved_failure_in_once(
    dlq_app: App, failed: dict[str, str], with_rules: list[App]
) -> None:
    # A second timeout of the same group: handled as RECOVERABLE, it raised no alert.
    fail(dlq_app, "charts.fetch", "tiles/2")
    before = counts(dlq_app)
    assert len(run(with_rules, dlq_app, TIMEOUTS_ARE_OURS, window=900.0).moves) == 2
    assert counts(dlq_app) == before  # the group was alerted as new when first handled
    [(occurrences,)] = table(
        dlq_app,
        "SELECT occurrences FROM ops_alerts WHERE id = ?",
        f"new_failure-{dead(dlq_app, failed['timeout'])}",
    )
    assert occurrences == 2  # the first timeout, which raised it, counted once; the second


def dead(app: App, job_id: str) -> str:
    [(dead_letter_id,)] = table(
        app, "SELECT dead_letter_id FROM dlq_failures WHERE job_id = ?", job_id
    )
    return str(dead_letter_id)


def test_a_reclassify_needs_a_reason(dlq_app: App, with_rules: list[App]) -> None:
    with pytest.raises(InvalidRequest, match="reason"):
        reclassify(dlq_app.store, dlq_app.dlq.handler, actor="ana", reason=" ")
