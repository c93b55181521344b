"""The browser as an attack surface, tested in the browser: hostile text shows as text
and never runs, the CSP blocks inline script, the session cookie is out of a script's
reach and the token out of the page, a form from another origin or without the CSRF
token is refused, and a read token is neither offered actions nor allowed them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page, expect

from deadletter import demo
from deadletter.app import App
from deadletter.model import JobState
from deadletter.web import create_server
from tests.api.conftest import running
from tests.browser.conftest import HOSTILE, Dashboard
from tests.support.operator import run_worker

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def hostile_job(dashboard: Dashboard) -> str:
    app = dashboard.app
    spec = app.tasks["hostile.explode"].spec(HOSTILE).options(labels={"site_name": HOSTILE})
    job_id = app.enqueue(spec)
    run_worker(app)
    assert dashboard.job(job_id).status is JobState.FAILED
    return job_id


def test_hostile_text_is_shown_as_text_and_never_runs(
    dashboard: Dashboard, browser: Browser
) -> None:
    job_id = hostile_job(dashboard)
    page = dashboard.open(browser)
    for path in ("/", "/failures", f"/failures/{job_id}", "/groups", "/review?state=all"):
        page.goto(path)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("img[src=x]").count() == 0, path
    page.goto(f"/failures/{job_id}")
    expect(page.locator("dl.facts .message")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator("dl.facts")).to_contain_text('onerror="window.__xss = 2"')
    page.locator("ol.timeline summary").first.click()
    page.locator("ol.timeline pre").first.wait_for()
    assert page.evaluate("window.__xss") is None


def test_csp_blocks_inline_script_and_headers_lock_the_page(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = dashboard.open(browser)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    response = page.goto("/failures")
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }"""
    )
    assert page.evaluate("window.__inline") is None
    assert any("Content Security Policy" in text for text in refused), refused


def test_the_session_cookie_and_the_token_stay_out_of_reach(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = dashboard.open(browser)
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert cookie["secure"] is False  # plain http on loopback; Secure over https
    assert page.evaluate("document.cookie") == ""
    secret = dashboard.secrets["admin"]
    for path in ("/", "/failures", "/tokens"):
        page.goto(path)
        assert secret not in page.content()
        storage = page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
        assert secret not in storage
    # Logged out, the old session id is worth nothing.
    page.get_by_role("button", name="Log out").click()
    page.context.add_cookies(
        [{"name": cookie["name"], "value": cookie["value"], "url": dashboard.url}]
    )
    page.goto("/failures")
    expect(page).to_have_url(re.compile("/login"))


@contextmanager
def other_site(target: str) -> Iterator[str]:
    """A page on another origin with a form that posts to `target`."""
    html = (
        f'<form method="post" action="{target}"><input name="reason" value="pwned">'
        '<button type="submit">Win a prize</button></form>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def first_failed(dashboard: Dashboard) -> str:
    with dashboard.app.store.snapshot() as execute:
        row = execute(
            "SELECT id FROM queue_jobs WHERE status = 'failed' AND queue = ? ORDER BY id",
            (demo.QUEUE,),
        ).fetchone()
    return str(row[0])


def post(page: Page, path: str, fields: dict[str, str]) -> int:
    """Status of a form post made by a script of the page (as a forged request would be)."""
    return int(
        page.evaluate(
            """([path, fields]) => fetch(path, {method: 'POST', body: new URLSearchParams(fields)})
                   .then(r => r.status)""",
            [path, fields],
        )
    )


def test_forged_and_cross_site_posts_are_refused(dashboard: Dashboard, browser: Browser) -> None:
    job_id = first_failed(dashboard)
    page = dashboard.open(browser)
    with other_site(f"{dashboard.url}/failures/{job_id}/abandon") as attacker:
        page.goto(attacker)
        page.get_by_role("button", name="Win a prize").click()
        expect(page.locator("body")).to_contain_text("another site")
    page.goto("/failures")
    assert post(page, f"/failures/{job_id}/abandon", {"reason": "no csrf"}) == 403
    assert post(page, f"/failures/{job_id}/abandon", {"reason": "x", "csrf": "guess"}) == 403
    assert dashboard.job(job_id).status is JobState.FAILED
    with dashboard.app.store.snapshot() as execute:
        audit = execute("SELECT count(*) FROM audit_log WHERE action = 'abandon'", ()).fetchone()
    assert audit[0] == 0


def test_read_scope_is_offered_no_action_and_refused_one(
    dashboard: Dashboard, browser: Browser
) -> None:
    job_id = first_failed(dashboard)
    page = dashboard.open(browser, "read")
    page.goto("/failures")
    assert page.get_by_role("button", name=re.compile("Requeue|Abandon")).count() == 0
    assert page.locator('input[name="job_id"]').count() == 0
    page.goto(f"/failures/{job_id}")
    assert page.locator("#actions-h").count() == 0
    assert page.locator("[data-json-editor]").count() == 0
    page.goto("/groups")
    assert page.get_by_role("button", name=re.compile("all")).count() == 0
    assert page.get_by_role("link", name="Tokens").count() == 0
    refused = page.goto("/tokens")
    assert refused is not None and refused.status == 403
    page.goto("/failures")
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value") or ""
    for path, fields in (
        (f"/failures/{job_id}/requeue", {}),
        (f"/failures/{job_id}/abandon", {"reason": "r"}),
        ("/bulk/plan", {"do": "requeue:filter", "queue": demo.QUEUE}),
        ("/tokens", {"name": "mine", "scope": "admin"}),
    ):
        assert post(page, path, {**fields, "csrf": csrf}) == 403, path
    assert dashboard.job(job_id).status is JobState.FAILED


def test_without_auth_the_login_says_so_and_the_page_is_an_admins(
    dashboard: Dashboard, browser: Browser
) -> None:
    # Its own App over the same database, as a second server process would have.
    with running(App(dashboard.app.settings), auth=False, build=create_server) as open_server:
        page = browser.new_page(base_url=open_server.url)
        page.goto("/failures")
        expect(page.locator(".warn")).to_contain_text("--no-auth")
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile("/failures$"))
        expect(page.locator(".scope")).to_contain_text("anonymous (auth off) · admin")
        page.close()
