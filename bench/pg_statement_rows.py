"""How a PostgreSQL statement's time grows with its rows, where the update trigger on
`queue_jobs` pairs each row's old and new versions (migrations 0027, 0034).

    .venv/bin/python bench/pg_statement_rows.py [--sizes 400,2000,10000] [--repeats 3]

For each size, a fresh database with that many no-op jobs queued, then:
- *lease after singles*: first 20 leases of one job each, so that every pooled
  connection's first trigger call had one row, then leases of `size` jobs, timed;
- *heartbeat*: `Store.extend` of all those leases, timed: it changes no job's status.
To compare two trees, run it under each one's `PYTHONPATH` in turn. Prints a Markdown
table, one row per size, medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pg_lease import queue_noops
from run import machine_line, make_app, postgres_url, timed

from deadletter.app import App
from deadletter.model import Lease

SINGLES = 20


def lease(app: App, count: int) -> list[Lease]:
    jobs = app.store.lease(
        ["bench"], limit=count, worker="bench", now=time.time(), lease_seconds=600
    )
    return [job.lease for job in jobs]


def measure(size: int, repeats: int) -> tuple[float, float]:
    """Median milliseconds of a lease of `size` after singles, and of its extension."""
    with postgres_url() as url:
        app = make_app(url)
        queue_noops(app, SINGLES + size * repeats)
        for _ in range(SINGLES):
            lease(app, 1)
        leases: list[Lease] = []
        lease_ms = []
        for _ in range(repeats):
            started = time.perf_counter()
            leases = lease(app, size)
            lease_ms.append((time.perf_counter() - started) * 1000)
        extend_ms = [
            timed(lambda: app.store.extend(leases, until=time.time() + 600)) * 1000
            for _ in range(repeats)
        ]
        app.close()
    return statistics.median(lease_ms), statistics.median(extend_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="400,2000,10000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    print("| rows | lease after singles | heartbeat (extend) | extend per lease |")
    print("|---:|---:|---:|---:|")
    for size in (int(size) for size in args.sizes.split(",")):
        lease_ms, extend_ms = measure(size, args.repeats)
        print(
            f"| {size:,} | {lease_ms:,.1f} ms | {extend_ms:,.1f} ms"
            f" | {extend_ms / size * 1000:,.1f} µs |"
        )


if __name__ == "__main__":
    main()
