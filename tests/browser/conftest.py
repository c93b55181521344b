"""The dashboard in a real browser: Debian's Chromium (never a downloaded build), driven
by Playwright, over a real server and failures that a real worker produced from the
demo's jobs, on every backend.

Screenshots go to test-artefacts/ at the repository's root (gitignored), or to
$DEADLETTER_TEST_ARTEFACTS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from deadletter import demo
from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.ops import tokens
from deadletter.web import create_server
from tests.api.conftest import UNLIMITED, running
from tests.contract.conftest import store_url
from tests.support.operator import run_worker
from tests.support.required import missing

__all__ = ["store_url"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS = Path(
    os.environ.get("DEADLETTER_TEST_ARTEFACTS", Path(__file__).parents[2] / "test-artefacts")
)
DEMO_JOBS = 40
# What an injected error message holds: each piece would run if it were not escaped.
HOSTILE = (
    '<script>window.__xss = 1</script>"><img src=x onerror="window.__xss = 2">'
    " javascript:window.__xss = 3"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing("Chromium is not installed: .ci/run installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def explode(text: str) -> None:
    """A task whose error message is whatever it is given."""
    raise ValueError(text)


@dataclass
class Dashboard:
    """A server with the dashboard over a demo run's failures, and a token per scope."""

    url: str
    app: App
    secrets: dict[str, str]

    def open(self, browser: Browser, scope: str = "admin", **options: Any) -> Page:
        """A new browser context, logged in with the token of `scope`."""
        context = browser.new_context(
            base_url=self.url, viewport={"width": 1280, "height": 900}, **options
        )
        page = context.new_page()
        page.goto("/")
        page.fill("#token", self.secrets[scope])
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.url}/")
        return page

    def job(self, job_id: str) -> Any:
        return self.app.store.get_job(job_id)


def demo_app(url: str, tmp_path: Path) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(tmp_path / "blobs"),
            "worker": {"poll_interval": 0.02},
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
        }
    )
    app = demo.build_app(replace(settings, serve=UNLIMITED))
    app.task(name="hostile.explode", queue=demo.QUEUE)(explode)
    return app


def run_demo(app: App) -> list[str]:
    """The demo's jobs, as `deadletter demo` enqueues them, run by a real worker."""
    job_ids = app.enqueue_many(demo.job_specs(app, DEMO_JOBS))
    run_worker(app)
    return job_ids


@pytest.fixture
def dashboard(store_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    app = demo_app(store_url, tmp_path)
    run_demo(app)
    secrets = {
        scope: tokens.create(app.store, f"{scope}-bot", [scope], now=time.time(), actor="test")[1]
        for scope in ("read", "operate", "admin")
    }
    with running(app, build=create_server) as server:
        yield Dashboard(server.url, app, secrets)


def screenshot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
