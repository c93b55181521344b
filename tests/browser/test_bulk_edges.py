"""The dashboard's bulk actions refuse what they cannot do, each with its status: an
unknown action, an empty selection, a filter that names every failure or is malformed, a
run without a reason, a run that is not on this server or has stopped."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Browser, Page

from deadletter import demo
from deadletter.api.bulkruns import MAX_ACTIVE
from tests.browser.conftest import Dashboard
from tests.browser.test_security import first_failed, post


def operator_page(dashboard: Dashboard, browser: Browser) -> tuple[Page, str]:
    page = dashboard.open(browser, "operate")
    page.goto("/failures")
    return page, page.locator('input[name="csrf"]').first.get_attribute("value") or ""


def test_bulk_plans_and_runs_that_cannot_be_done_are_refused(
    dashboard: Dashboard, browser: Browser
) -> None:
    page, csrf = operator_page(dashboard, browser)
    queue_filter = json.dumps({"queue": demo.QUEUE})
    for path, fields in (
        ("/bulk/plan", {"do": "delete:filter", "queue": demo.QUEUE}),
        ("/bulk/plan", {"do": "requeue:selected"}),  # nothing ticked
        ("/bulk/plan", {"do": "requeue:filter"}),  # every failure: for the CLI
        ("/bulk/plan", {"do": "abandon:filter", "error_class": "NOT_A_CLASS"}),
        ("/bulk", {"action": "requeue", "filter": queue_filter, "reason": " "}),
        ("/bulk", {"action": "requeue", "filter": "{not json", "reason": "r"}),
        ("/bulk", {"action": "requeue", "filter": "{}", "reason": "r"}),
    ):
        assert post(page, path, {**fields, "csrf": csrf}) == 422, (path, fields)
    assert post(page, "/bulk/no-such-run/pause", {"csrf": csrf}) == 404
    ticked = {"do": "abandon:selected", "job_id": first_failed(dashboard), "csrf": csrf}
    assert post(page, "/bulk/plan", ticked) == 200  # the dry run of what is ticked


def test_a_bulk_run_that_has_stopped_cannot_be_paused(
    dashboard: Dashboard, browser: Browser
) -> None:
    page, csrf = operator_page(dashboard, browser)
    fields = {"action": "abandon", "filter": json.dumps({"queue": demo.QUEUE}), "reason": "gone"}
    assert post(page, "/bulk", {**fields, "rate": "10000", "csrf": csrf}) == 200  # redirected
    page.goto("/bulk")
    run_id = (page.locator("section.run").get_attribute("id") or "").removeprefix("run-")
    deadline = time.monotonic() + 60
    while page.locator(f"#run-{run_id} [data-run-state]").text_content() != "done":
        assert time.monotonic() < deadline, "the bulk run never finished"
        time.sleep(0.2)
        page.reload()
    assert post(page, f"/bulk/{run_id}/pause", {"csrf": csrf}) == 409


def test_a_bulk_run_past_the_servers_limit_is_refused(
    dashboard: Dashboard, browser: Browser
) -> None:
    page, csrf = operator_page(dashboard, browser)
    slow = {
        "action": "requeue",
        "filter": json.dumps({"queue": demo.QUEUE}),
        "reason": "one at a time",
        "rate": "0.01",  # a job every 100 s: each run is still running at the next post
        "csrf": csrf,
    }
    for _ in range(MAX_ACTIVE):
        assert post(page, "/bulk", slow) == 200  # redirected to the run
    assert post(page, "/bulk", slow) == 409
