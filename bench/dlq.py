"""The DLQ handler's throughput, latency and forensic bytes, on each backend.

    .venv/bin/python bench/dlq.py [--backends sqlite,postgres] [--letters 3000]

Dead letters come from jobs that fail once with a mix of the demo's faults; the
handler then runs (a) in batches, as `deadletter worker --dlq-only` runs it, and
(b) one letter per call, timing each call for the median and p99. Forensics go to
a local folder (the embedded default). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from run import machine_line, p99, postgres_url, raw_insert_rate, scratch_folder, sqlite_url

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.demo import UpstreamHTTPError
from deadletter.store.base import Succeeded

QUEUE = "bench"
DLQ = f"{QUEUE}-dlq"
# Factories, not instances: raising one instance again grows its traceback each time.
FAULTS: tuple[Callable[[], Exception], ...] = (
    lambda: TimeoutError("Timeout fetching data for building-7 after 30s"),
    lambda: UpstreamHTTPError(400, "Bad Request: chart 12 has no series"),
    lambda: UpstreamHTTPError(500, "Internal Server Error"),
    lambda: KeyError("series_12"),
)


def make_app(url: str, blobs: Path) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(blobs),
            "worker": {"concurrency": 2, "batch_size": 400, "poll_interval": 0.01},
            "dlq": {"log_file": str(blobs.parent / "dlq.log")},
            "queues": {QUEUE: {"max_retries": 0}},
        }
    )
    app = App(settings)
    app.store.migrate()

    @app.task(name="fail", queue=QUEUE)
    def fail(n: int) -> None:
        raise FAULTS[n % len(FAULTS)]()

    return app


def dead_letters(app: App, count: int) -> None:
    app.enqueue_many(app.tasks["fail"].spec(n) for n in range(count))
    app.worker(dlq=False).run(burst=True)


def one_by_one(app: App, count: int) -> list[float]:
    """Seconds per call of the handler on a single letter, lease and finish included."""
    store, handler = app.store, app.dlq.handler
    times = []
    for _ in range(count):
        started = time.perf_counter()
        [letter] = store.lease([DLQ], limit=1, worker="bench", now=time.time(), lease_seconds=60)
        failed = handler([letter])
        store.finish([Succeeded(letter.lease, time.time())], now=time.time())
        times.append(time.perf_counter() - started)
        if failed:
            raise RuntimeError(f"handler failed: {failed}")
    return times


def forensic_sizes(app: App) -> list[int]:
    blobs = app.dlq.blobs
    return [len(blobs.get(key)) for key in blobs.list("failures/")]


def measure(backend: str, url: str, letters: int) -> list[str]:
    app = make_app(url, scratch_folder() / "blobs")
    reference = raw_insert_rate(url, 20_000)
    dead_letters(app, letters)
    batch_seconds = _timed(lambda: app.worker(dlq_only=True).run(burst=True))
    singles = min(letters, 1000)
    dead_letters(app, singles)
    times = sorted(one_by_one(app, singles))
    sizes = forensic_sizes(app)
    app.close()
    rate = letters / batch_seconds
    return [
        f"| {backend} | handled in batches | {letters:,} | {rate:,.0f}/s"
        f" | {reference:,.0f}/s | {rate / reference:.3f} |",
        f"| {backend} | handled one per call | {singles:,} | {singles / sum(times):,.0f}/s"
        f" | median {statistics.median(times) * 1000:.2f} ms, p99 {p99(times) * 1000:.2f} ms | |",
        f"| {backend} | forensic record, gzip JSON | {len(sizes):,} |"
        f" median {statistics.median(sizes):,.0f} B | max {max(sizes):,} B | |",
    ]


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--letters", type=int, default=3000)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    lines = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            lines.extend(measure(backend, url, args.letters))
    print(machine_line())
    print("| backend | what | letters | result | raw inserts, same db | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
