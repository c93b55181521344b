"""What redacting an attempt's error costs the worker, per failed attempt.

    .venv/bin/python bench/redaction.py [--repeat 2000]

The worker redacts each failed attempt's message and traceback of secrets before it is
written (`worker/retry.py`). This times that step alone on three kinds of error: a
typical one (a timeout deep in a client library), one full of secrets, and the largest
the worker keeps (a 2,000-character message and an 8,000-character traceback); each
first as never seen (a new traceback each time), then as seen before (the same one
again, as on a job's next attempt that fails the same way: redact.py's memo). Prints a
Markdown table; `docs/benchmarks.md` records one run.
"""

from __future__ import annotations

import argparse
import time

from deadletter.redact import Redactor
from deadletter.worker.slots import TRACEBACK_LIMIT
from deadletter.worker.tracebacks import format_failure

SECRETS = (
    "AKIACANARY0123456789 Authorization: Bearer cnry.bearer.9f8e7d6c5b4a"
    " postgres://app:Pw0rdCanary@db.example.com/app password=hunter2 4539 1488 0343 6467"
)


def _raise_deep(depth: int, message: str) -> None:
    if depth:
        _raise_deep(depth - 1, message)
    raise TimeoutError(message)


def error(message: str, depth: int) -> tuple[str, str]:
    try:
        _raise_deep(depth, message)
    except TimeoutError as exc:
        return message, format_failure(exc)[-TRACEBACK_LIMIT:]
    raise AssertionError("unreachable")


CASES = {
    "typical (timeout, 12 frames)": error("Timeout fetching tiles/42 after 30s", 10),
    "secrets in message and traceback": error(f"sync failed: {SECRETS}", 10),
    "largest kept (2,000 + 8,000 chars)": error("x" * 1500 + " " + SECRETS, 200),
}


def per_attempt(redactor: Redactor, errors: list[tuple[str, str]]) -> float:
    """Microseconds to redact one attempt's message and traceback, over `errors`."""
    started = time.perf_counter()
    for message, traceback in errors:
        redactor.redact_text(message[:2500])
        redactor.redact_text(traceback)
    return (time.perf_counter() - started) / len(errors) * 1e6


def unseen(message: str, traceback: str, count: int) -> list[tuple[str, str]]:
    """`count` variants of one error, each new to the memo: a number of its own in the
    message and in the traceback's first line number."""
    return [(f"{n} {message}", traceback.replace("line ", f"line {n}", 1)) for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    redactor = Redactor.from_config().secrets_only()
    print("| error | message + traceback chars | never seen | seen before |")
    print("|---|---:|---:|---:|")
    for name, (message, traceback) in CASES.items():
        first = per_attempt(redactor, unseen(message, traceback, args.repeat))
        again = per_attempt(redactor, [(message, traceback)] * args.repeat)
        chars = len(message) + len(traceback)
        print(f"| {name} | {chars:,} | {first:,.0f} µs | {again:,.0f} µs |")


if __name__ == "__main__":
    main()
