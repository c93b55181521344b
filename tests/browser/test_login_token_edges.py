"""The login page refuses a token it does not know and a way out to another site; the
tokens page refuses to revoke a token that is not there, and to make one while auth is
off."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from deadletter.app import App
from deadletter.web import create_server
from tests.api.conftest import running
from tests.browser.conftest import Dashboard
from tests.browser.test_failure_page_edges import logged_in
from tests.browser.test_security import post

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def test_a_wrong_token_is_refused_and_next_stays_on_this_site(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = browser.new_page(base_url=dashboard.url)
    page.goto("/login?next=//elsewhere.example/steal")
    assert page.locator('input[name="next"]').get_attribute("value") == "/"
    page.fill("#token", "not-a-token")
    with page.expect_response(re.compile("/login$")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    expect(page.locator("main")).to_contain_text("That token is not valid.")
    page.fill("#token", dashboard.secrets["read"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{dashboard.url}/")
    page.close()


def test_a_token_not_there_is_not_revoked(dashboard: Dashboard, browser: Browser) -> None:
    page, csrf = logged_in(dashboard, browser, "admin")
    assert post(page, "/tokens/no-such-token/revoke", {"csrf": csrf}) == 404


def test_no_token_is_made_while_auth_is_off(dashboard: Dashboard, browser: Browser) -> None:
    with running(App(dashboard.app.settings), auth=False, build=create_server) as open_server:
        page = browser.new_page(base_url=open_server.url)
        page.goto("/failures")
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile("/failures$"))
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value") or ""
        assert post(page, "/tokens", {"name": "mine", "scope": "admin", "csrf": csrf}) == 403
        page.close()
