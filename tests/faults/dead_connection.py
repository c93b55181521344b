"""A store whose host is cut off: `python -m tests.faults.dead_connection URL HOW`.

Migrates a PostgresStore, so that its pool keeps a connection to the server, then:
- HOW "call": prints "ready", and at the next line on stdin (the test has cut this host
  off by then) calls the store again over that connection and prints how the call
  ended: "answered", or the name of the error it raised;
- HOW "lock": takes the advisory lock LOCK in a transaction, prints "ready", and waits
  inside the transaction for a line on stdin that does not come.
"""

from __future__ import annotations

import sys

from deadletter.errors import StoreUnavailable
from deadletter.store.postgres import PostgresStore

LOCK = 0x6375_7421


def main() -> None:
    store = PostgresStore(sys.argv[1])
    store.migrate()
    if sys.argv[2] == "lock":
        with store.transaction() as execute:
            execute("SELECT pg_advisory_xact_lock(?)", (LOCK,))
            print("ready", flush=True)
            sys.stdin.readline()
        return
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        store.count_states()
        print("answered", flush=True)
    except StoreUnavailable as exc:
        print(type(exc).__name__, flush=True)


if __name__ == "__main__":
    main()
