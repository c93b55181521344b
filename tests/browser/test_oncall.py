"""The on-call story, end to end in Chromium on each backend: log in, read the overview
after a demo run, filter failures by class and site, open one, read its traceback, fix
its payload in the editor, requeue it, let a real worker recover it, see the recovery
row turn recovered; requeue a group after its dry run; pause and resume a bulk run;
log out."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import Browser, Page, expect

from deadletter import demo
from deadletter.model import JobState
from tests.browser.conftest import Dashboard, screenshot
from tests.support.operator import run_worker


def test_on_call_story(dashboard: Dashboard, browser: Browser) -> None:
    page = dashboard.open(browser, timezone_id="Asia/Tokyo")
    overview(page, dashboard)
    job_id = filter_and_open(page)
    fix_and_requeue(page, job_id)

    run_worker(dashboard.app)
    job = dashboard.job(job_id)
    assert job.status is JobState.SUCCEEDED, job
    page.goto("/recovery?status=recovered")
    expect(page.locator(f'tr[data-job="{job_id}"] .status')).to_have_text("recovered")

    group_requeue(page)
    pause_and_resume(page)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto("/failures")
    expect(page).to_have_url(re.compile(r"/login\?next=/failures"))


def overview(page: Page, dashboard: Dashboard) -> None:
    stats = dashboard.app.store.dlq_stats(now=time.time())
    expect(page.locator('[data-stat="total_failed"]')).to_have_text(str(stats.total_failed))
    expect(page.locator(".chart .uplot canvas")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("last_24h")
    # Times in the browser's zone, UTC on hover.
    stamp = page.locator("time").first
    assert (stamp.get_attribute("title") or "").endswith(" UTC")
    assert "UTC" not in stamp.inner_text()
    # The live part refreshes itself without a reload.
    with page.expect_response(lambda r: r.url.endswith("/?span=24h")):
        page.wait_for_timeout(0)


def filter_and_open(page: Page) -> str:
    page.get_by_role("link", name="Failures", exact=True).click()
    page.select_option("#f-class", "RECOVERABLE")
    page.fill("#f-label", "site_name=building-b")
    # A range picked in the browser's zone (Tokyo here) travels as epoch seconds.
    page.fill("#f-from", "2000-01-01T09:00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"error_class=RECOVERABLE.*label=site_name%3Dbuilding-b"))
    expect(page).to_have_url(re.compile(r"since=946684800(&|$)"))
    expect(page.locator("#f-from")).to_have_value(re.compile(r"^2000-01-01T09:00(:00)?$"))
    rows = page.locator("table.list tbody tr")
    assert rows.count() >= 1
    for row in rows.all():
        expect(row).to_contain_text("RECOVERABLE")
        expect(row).to_contain_text("building-b")
    link = rows.first.locator("a").first
    job_id = link.inner_text()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(job_id)
    return job_id


def fix_and_requeue(page: Page, job_id: str) -> None:
    traceback = page.locator("ol.timeline details").first
    expect(traceback.locator("pre")).to_be_hidden()
    traceback.locator("summary").click()
    expect(traceback.locator("pre")).to_contain_text("Traceback")

    editor = page.locator("[data-json-editor]")
    submit = editor.get_by_role("button", name="Requeue with this payload")
    page.fill("#payload", '{"args": [')
    expect(editor.locator(".json-status")).to_contain_text("Not valid JSON")
    expect(submit).to_be_disabled()
    original = json.loads(page.locator("#payload").get_attribute("data-original") or "")
    fixed = {**original, "args": [*original["args"][:2], None]}
    page.fill("#payload", json.dumps(fixed))
    expect(editor.locator(".json-status")).to_contain_text("Valid JSON")
    expect(editor.locator(".diff .add")).to_contain_text("null")
    expect(editor.locator(".diff .del")).to_have_count(1)
    page.fill("#ed-reason", "the fault flag was set by mistake")
    screenshot(page, "details-editing")
    submit.click()
    expect(page.locator(".notice")).to_have_text("The job was requeued.")


def group_requeue(page: Page) -> None:
    page.goto("/groups")
    row = page.locator("tbody tr").filter(has=page.locator(".badge-recoverable")).first
    expect(row.locator("svg.spark polyline")).to_have_count(1)
    row.get_by_text("Sample traceback").click()  # fetched by htmx when opened
    expect(row.locator("pre.traceback")).to_contain_text("Traceback")
    row.get_by_role("button", name=re.compile("Requeue all of group")).click()
    count = int(page.locator("[data-plan-count]").inner_text())
    assert count >= 1
    expect(page.locator("table.list tbody tr")).to_have_count(min(count, 10))
    page.fill("#bulk-reason", "upstream is back")
    page.get_by_role("button", name=re.compile(r"^Requeue \d+ job")).click()
    expect(page.locator("[data-run-state]").first).to_have_text("done", timeout=15_000)
    page.goto("/audit?action=bulk_requeue")
    expect(page.locator("tbody tr").first).to_contain_text("web:admin-bot")


def pause_and_resume(page: Page) -> None:
    page.goto(f"/failures?queue={demo.QUEUE}&error_class=USER_ERROR")
    page.get_by_role("button", name="Abandon all matching…").click()
    assert int(page.locator("[data-plan-count]").inner_text()) >= 3
    page.fill("#bulk-reason", "these users were told")
    page.fill("#bulk-rate", "2")
    page.get_by_role("button", name=re.compile(r"^Abandon \d+ job")).click()
    run = page.locator("section.run").first
    run.get_by_role("button", name="Pause").click()
    expect(run.locator("[data-run-state]")).to_have_text("paused")
    moved = run.locator("[data-run-progress]").inner_text()
    page.wait_for_timeout(1500)
    page.reload()
    expect(run.locator("[data-run-progress]")).to_have_text(moved)
    run.get_by_role("button", name="Resume").click()
    expect(run.locator("[data-run-state]")).to_have_text(re.compile("running|done"))
    expect(run.locator("[data-run-state]")).to_have_text("done", timeout=20_000)
