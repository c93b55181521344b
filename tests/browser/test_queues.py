"""The Queues and workers page in Chromium, on each backend: a live worker with the job
it runs, a queue paused and resumed with a reason (audited as the session's token), a
form without this session's CSRF token refused, and no action offered to `read`."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.worker.loop import Worker
from tests.browser.conftest import Dashboard, screenshot
from tests.browser.test_security import post

QUEUE = "naps"


@pytest.fixture
def worker(dashboard: Dashboard) -> Iterator[Worker]:
    """A worker of `naps` running one nap that lasts until the test ends."""
    app = dashboard.app
    awake = threading.Event()
    app.task(name="naps.nap", queue=QUEUE)(lambda: awake.wait(60))
    app.tasks["naps.nap"].enqueue()
    running = app.worker(queues=[QUEUE], dlq=False, concurrency=1)
    thread = threading.Thread(target=running.run)
    thread.start()
    yield running
    awake.set()
    running.stop()
    thread.join()


def row(page: Page) -> Locator:
    return page.locator(f'tr[data-queue="{QUEUE}"]')


def test_pause_and_resume_a_queue_beside_the_live_workers(
    dashboard: Dashboard, browser: Browser, worker: Worker
) -> None:
    page = dashboard.open(browser, "operate")
    page.get_by_role("link", name="Queues", exact=True).click()
    # The workers' part refreshes itself: the worker and its nap show without a reload.
    live = page.locator(f'tr[data-worker="{worker.name}"]')
    expect(live).to_contain_text("naps.nap", timeout=20_000)
    expect(live).to_contain_text("1/1")
    expect(row(page).locator('[data-count="running"]')).to_have_text("1")
    # Throughput: what the live workers finished per second, from their heartbeats.
    expect(row(page).locator('[data-rate="succeeded"]')).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(live.locator("[data-worker-rates]")).to_be_visible()

    row(page).get_by_placeholder("reason (required)").fill("INC-231: provider down")
    row(page).get_by_role("button", name=f"Pause {QUEUE}").click()

    expect(page.get_by_role("status")).to_have_text("The queue was paused.")
    expect(row(page).locator("[data-queue-state]")).to_contain_text("INC-231: provider down")
    screenshot(page, "queues-paused")
    pause = dashboard.app.store.paused_queues()[QUEUE]
    assert pause.paused_by.startswith("web:operate-bot")
    # A resume needs a reason too: the browser will not send the form without one.
    row(page).get_by_role("button", name=f"Resume {QUEUE}").click()
    assert QUEUE in dashboard.app.store.paused_queues()
    row(page).get_by_placeholder("reason (required)").fill("provider back")
    row(page).get_by_role("button", name=f"Resume {QUEUE}").click()
    expect(page.get_by_role("status")).to_have_text("The queue was resumed.")
    expect(row(page).locator("[data-queue-state]")).to_have_text("active")
    entries = audit_entries(dashboard.app.store, target=QUEUE).items
    assert [(e.action, e.reason) for e in entries] == [
        (AuditAction.QUEUE_RESUME, "provider back"),
        (AuditAction.QUEUE_PAUSE, "INC-231: provider down"),
    ]


def test_a_pause_without_the_sessions_csrf_token_or_by_read_is_refused(
    dashboard: Dashboard, browser: Browser, worker: Worker
) -> None:
    page = dashboard.open(browser, "operate")
    page.goto("/queues")
    assert post(page, f"/queues/{QUEUE}/pause", {"reason": "forged"}) == 403
    assert post(page, f"/queues/{QUEUE}/pause", {"reason": "forged", "csrf": "guess"}) == 403

    reader = dashboard.open(browser, "read")
    reader.goto("/queues")
    expect(row(reader)).to_be_visible()
    assert reader.get_by_role("button", name=re.compile("Pause|Resume")).count() == 0
    csrf = reader.locator('input[name="csrf"]').first.get_attribute("value") or ""
    assert post(reader, f"/queues/{QUEUE}/pause", {"reason": "r", "csrf": csrf}) == 403
    assert dashboard.app.store.paused_queues() == {}
