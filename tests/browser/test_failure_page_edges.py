"""A failure's pages refuse what they cannot do, each with its status, and the list says
what is wrong with a filter it cannot read."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Dashboard
from tests.browser.test_security import first_failed, post


def logged_in(dashboard: Dashboard, browser: Browser, scope: str) -> tuple[Page, str]:
    page = dashboard.open(browser, scope)
    page.goto("/failures")
    return page, page.locator('input[name="csrf"]').first.get_attribute("value") or ""


def test_the_list_says_what_is_wrong_with_its_filter(
    dashboard: Dashboard, browser: Browser
) -> None:
    page, _ = logged_in(dashboard, browser, "read")
    shown = page.goto("/failures?error_class=NOT_A_CLASS")
    assert shown is not None and shown.status == 200
    expect(page.locator("main")).to_contain_text("error_class")
    page.goto("/failures?within=24h")  # a preset: failed in the last 24 hours
    expect(page.locator("main")).to_contain_text(first_failed(dashboard))
    missing = page.goto("/failures/no-such-job")
    assert missing is not None and missing.status == 404


def test_actions_that_cannot_be_done_are_refused(dashboard: Dashboard, browser: Browser) -> None:
    job_id = first_failed(dashboard)
    page, csrf = logged_in(dashboard, browser, "operate")
    edited = {"payload": '{"args": []}', "csrf": csrf}
    assert post(page, f"/failures/{job_id}/requeue", edited) == 403  # an admin's edit
    assert post(page, "/failures/no-such-job/abandon", {"reason": "r", "csrf": csrf}) == 404
    assert post(page, f"/failures/{job_id}/abandon", {"reason": "r", "csrf": csrf}) == 200
    assert post(page, f"/failures/{job_id}/abandon", {"reason": "r", "csrf": csrf}) == 409
    admin, admin_csrf = logged_in(dashboard, browser, "admin")
    broken = {"payload": "{not json", "csrf": admin_csrf}
    assert post(admin, f"/failures/{first_failed(dashboard)}/requeue", broken) == 422
