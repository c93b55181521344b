"""The dashboard's pages at scale: each page's server time with a million failures in
the database, on each backend.

    .venv/bin/python bench/web.py --rows 1000000 [--backends sqlite,postgres] [--calls 50]

The database is filled as bench/ops.py fills it (failures over 60 days, 8 queues, 4
classes, 2,000 groups, recovery rows), then each page is asked for `calls` times
through the ASGI app in this process (Starlette's TestClient, logged in as an admin):
the time from request to the last byte of the rendered page, with no network between.
Prints a Markdown table; `docs/benchmarks.md` records one run with its machine.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

from fastapi.testclient import TestClient
from ops import WARMUP, Timing, fill, timed_calls
from run import machine_line, postgres_url, sqlite_url

from deadletter.app import App
from deadletter.config import ServeSettings, settings_from_mapping
from deadletter.ops import tokens
from deadletter.web import create_server

# The target: each page's server time at a million failures.
TARGET_MS = 50.0


def pages(client: TestClient) -> list[tuple[str, str]]:
    """The pages measured: every page of the dashboard, and the failure list's filters."""
    first = client.get("/failures")
    cursor = first.text.split("cursor=", 1)[1].split('"', 1)[0]
    job_id = first.text.split('href="/failures/', 1)[1].split('"', 1)[0]
    return [
        ("overview (chart of 24 h)", "/"),
        ("overview, chart of 1 h", "/?span=1h"),
        ("overview, chart of 7 d", "/?span=7d"),
        ("failures, first page", "/failures"),
        ("failures, next page", f"/failures?cursor={cursor}"),
        ("failures of one class", "/failures?error_class=SYSTEM_ERROR"),
        ("failures of one queue (4%)", "/failures?queue=billing"),
        ("failures of one site label (2%)", "/failures?label=site_name%3Dbuilding-7"),
        (
            "failures of class + site, last 7 d",
            "/failures?error_class=RECOVERABLE&label=site_name%3Dbuilding-7&within=7d",
        ),
        ("failures, text in the error (1.5%)", "/failures?text=node+7"),
        ("failure details", f"/failures/{job_id}"),
        ("groups (50, with sparklines)", "/groups"),
        ("recovery queue", "/recovery"),
        ("review log", "/review"),
        ("bulk runs", "/bulk"),
        ("audit log", "/audit"),
        ("tokens", "/tokens"),
    ]


def measure(backend: str, url: str, rows: int, calls: int) -> list[str]:
    now = time.time()
    with tempfile.TemporaryDirectory() as blobs:
        settings = settings_from_mapping({"database_url": url, "blob_url": blobs})
        # The rate limit guards a server against its clients, not against this loop.
        app = App(replace(settings, serve=ServeSettings(rate_limit=math.inf)))
        try:
            app.store.migrate()
            seconds = fill(url, rows, now)
            _, secret = tokens.create(app.store, "bench", ["admin"], now=now, actor="bench/web.py")
            # A loopback Host: the server answers no other name (api/edges.py).
            with TestClient(create_server(app), base_url="http://127.0.0.1") as client:
                client.post("/login", data={"token": secret}, follow_redirects=False)
                timings = [
                    timed_calls(what, _getter(client, path), calls) for what, path in pages(client)
                ]
        finally:
            app.close()
    lines = [_line(backend, timing, calls) for timing in timings]
    lines.append(f"| {backend} | (filled in {seconds:,.0f} s) | | | | | |")
    return lines


def _getter(client: TestClient, path: str) -> Callable[[], None]:
    def get() -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")

    return get


def _line(backend: str, timing: Timing, calls: int) -> str:
    verdict = "yes" if timing.median * 1000 <= TARGET_MS else "**no**"
    return (
        f"| {backend} | {timing.what} | {calls} | {min(timing.times) * 1000:.1f} ms"
        f" | {timing.median * 1000:.1f} ms | {timing.p99 * 1000:.1f} ms | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    lines = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            lines.extend(measure(backend, url, args.rows, args.calls))
    print(machine_line())
    print(f"{args.rows:,} failures; each page asked {args.calls} times, after {WARMUP} more")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| backend | page | calls | fastest | median | p99 | median <= {TARGET_MS:g} ms |")
    print("|---|---|---:|---:|---:|---:|:---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
