"""One store call over a dead connection: `python -m tests.faults.dead_connection URL`.

Migrates a PostgresStore, so that its pool keeps an idle connection to the server,
and prints "ready"; at the next line on stdin (the test has cut this host off by
then) reads again on that connection and prints how the call ended: "answered", or the
name of the error it raised.
"""

from __future__ import annotations

import sys

from deadletter.errors import StoreUnavailable
from deadletter.store.postgres import PostgresStore


def main() -> None:
    store = PostgresStore(sys.argv[1])
    store.migrate()
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        store.count_states()
        print("answered", flush=True)
    except StoreUnavailable as exc:
        print(type(exc).__name__, flush=True)


if __name__ == "__main__":
    main()
