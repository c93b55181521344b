"""A worker's stop, asked by a signal handler while the main thread waits on it.

A plain threading.Event hangs there: the handler's `set` waits for the event's lock,
which the interrupted `wait` holds on the same thread. In a child process the main
thread waits on the flag without sleeping (the moment of danger, made common), and
each SIGTERM's handler sets it: every signal must be answered.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import textwrap

ROUNDS = 100

CHILD = textwrap.dedent(
    f"""
    import signal, threading
    from deadletter.worker.loop import StopFlag

    flag = {{flag}}
    signal.signal(signal.SIGTERM, lambda *_: flag.set())
    print("ready", flush=True)
    for _ in range({ROUNDS}):
        while not flag.wait(0):
            pass
        flag.clear()
        print("stopped", flush=True)
    """
)


def answered(flag: str) -> int:
    """How many of ROUNDS SIGTERMs the child answered before it hung (or all)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(flag=flag)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        for done in range(ROUNDS):
            child.send_signal(signal.SIGTERM)
            if not select.select([child.stdout], [], [], 5)[0]:
                return done
            assert child.stdout.readline() == "stopped\n"
        assert child.wait(5) == 0
        return ROUNDS
    finally:
        child.kill()
        child.wait()


def test_a_signal_handler_sets_the_stop_flag_while_the_main_thread_waits_on_it() -> None:
    # With threading.Event() in its place, the child hung within the first few rounds.
    assert answered("StopFlag()") == ROUNDS
