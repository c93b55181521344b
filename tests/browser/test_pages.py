"""Every page, light and dark, at 1280 px and at a phone's width: axe-core finds no
serious or critical violation, nothing overflows a phone's screen, the keyboard
reaches the navigation, and a screenshot of each is written to test-artefacts/."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import Dashboard, screenshot

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
SEVERE = {"serious", "critical"}
PHONE: ViewportSize = {"width": 390, "height": 844}


def pages_of(page: Page) -> dict[str, str]:
    """Each page's path; a failure's details and a dry run need one of the demo's."""
    page.goto("/failures?error_class=RECOVERABLE")
    details = page.locator("table.list tbody a").first.get_attribute("href") or ""
    return {
        "overview": "/",
        "failures": "/failures",
        "details": details,
        "groups": "/groups",
        "recovery": "/recovery",
        "review": "/review",
        "queues": "/queues",
        "bulk": "/bulk",
        "audit": "/audit",
        "tokens": "/tokens",
    }


def severe(axe: Axe, page: Page) -> list[str]:
    found = axe.run(page).response["violations"]
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in found if v["impact"] in SEVERE]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_is_accessible_in_each_theme(
    dashboard: Dashboard, browser: Browser, theme: str
) -> None:
    axe = Axe()
    login = browser.new_page(base_url=dashboard.url, color_scheme=theme)  # type: ignore[arg-type]
    login.goto("/login")
    assert severe(axe, login) == []
    screenshot(login, f"login-{theme}")
    page = dashboard.open(browser, color_scheme=theme)
    for name, path in pages_of(page).items():
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert severe(axe, page) == [], name
        screenshot(page, f"{name}-{theme}")
    page.goto("/groups")
    page.get_by_role("button", name=re.compile("Requeue all of group")).first.click()
    expect(page.locator("[data-plan-count]")).to_be_visible()
    assert severe(axe, page) == [], "dry run"
    screenshot(page, f"dry-run-{theme}")


def test_phone_width_and_keyboard(dashboard: Dashboard, browser: Browser) -> None:
    page = dashboard.open(browser)
    paths = pages_of(page)
    page.set_viewport_size(PHONE)
    for name in ("overview", "failures", "details", "groups"):
        page.goto(paths[name])
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} is {overflow} px wider than a phone"
        screenshot(page, f"{name}-phone")
    # From the top of a page, Tab reaches the skip link, then the navigation.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Failures":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/failures$"))


def test_review_and_tokens(dashboard: Dashboard, browser: Browser) -> None:
    page = dashboard.open(browser)
    page.goto("/review")
    open_entries = page.locator("tbody tr").filter(has=page.get_by_role("button"))
    before = open_entries.count()
    assert before >= 1
    open_entries.first.locator("input[name=note]").fill("a missing key in the chart data")
    open_entries.first.get_by_role("button", name="Mark reviewed").click()
    expect(open_entries).to_have_count(before - 1)
    page.goto("/review?state=reviewed")
    expect(page.locator("tbody")).to_contain_text("a missing key in the chart data")

    page.goto("/tokens")
    page.fill("#t-name", "grafana")
    page.select_option("#t-scope", "read")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("pre.secret").inner_text()
    assert re.fullmatch(r"dl_[A-Za-z0-9_-]{43}", secret)
    page.reload()
    assert secret not in page.content()
    page.get_by_role("button", name="Revoke token grafana").click()
    expect(page.locator("tbody tr").filter(has_text="grafana")).to_contain_text("revoked")
