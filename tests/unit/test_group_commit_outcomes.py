"""GroupCommit's outcomes for each caller of a batch that fails, with a write of the
test's own: the database away, and a leader interrupted in its write."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from deadletter.errors import StoreUnavailable
from deadletter.model import NewJob
from deadletter.store.group import GroupCommit
from tests.contract.test_crash import wait_for


class Interrupted(BaseException):
    """Not an Exception, as KeyboardInterrupt is not."""


def job(job_id: str) -> NewJob:
    return NewJob(
        id=job_id,
        queue="q",
        task="t",
        payload={},
        max_retries=0,
        dead_letter_queue="q-dlq",
        run_at=0.0,
        created_at=0.0,
    )


def outcome(group: GroupCommit, job_id: str) -> list[str] | BaseException:
    try:
        return group.enqueue([job(job_id)])
    except BaseException as exc:  # KeyboardInterrupt-like too: the outcome under test
        return exc


def second_batch(
    fail: Callable[[Sequence[NewJob]], list[str]],
) -> tuple[list[list[str]], dict[str, list[str] | BaseException]]:
    """ "lead" commits alone while "b" and "c" queue; their batch is written by `fail`.
    The job ids of every write, and each caller's outcome."""
    writes: list[list[str]] = []
    release = threading.Event()

    def write(jobs: Sequence[NewJob]) -> list[str]:
        writes.append([j.id for j in jobs])
        if len(writes) == 1:
            release.wait()
            return ["lead"]
        return fail(jobs) if len(jobs) > 1 else [jobs[0].id]

    group = GroupCommit(write, refused=())
    with ThreadPoolExecutor(3) as pool:
        futures: dict[str, Future[list[str] | BaseException]] = {
            "lead": pool.submit(outcome, group, "lead")
        }
        assert wait_for(lambda: group.committing, timeout=30)
        futures |= {name: pool.submit(outcome, group, name) for name in ("b", "c")}
        assert wait_for(lambda: group.queued == 2, timeout=30)
        release.set()
    assert not group.committing
    return writes, {name: future.result() for name, future in futures.items()}


def test_the_database_away_fails_every_caller_of_the_batch_once() -> None:
    def away(jobs: Sequence[NewJob]) -> list[str]:
        raise StoreUnavailable("the database is away")

    writes, outcomes = second_batch(away)

    assert outcomes["lead"] == ["lead"]
    assert sorted(writes[1]) == ["b", "c"] and len(writes) == 2  # none tried again alone
    errors = [outcomes["b"], outcomes["c"]]
    assert all(isinstance(e, StoreUnavailable) and "away" in str(e) for e in errors)
    assert errors[0] is not errors[1]  # each caller raises its own


def test_a_leader_interrupted_in_its_write_leaves_the_others_to_write_alone() -> None:
    def interrupted(jobs: Sequence[NewJob]) -> list[str]:
        raise Interrupted

    writes, outcomes = second_batch(interrupted)

    leader = next(name for name in ("b", "c") if isinstance(outcomes[name], Interrupted))
    other = "c" if leader == "b" else "b"
    assert outcomes[other] == [other]
    assert writes[2:] == [[other]]


@pytest.mark.parametrize("error", [ValueError("bad row"), Interrupted()])
def test_a_caller_alone_gets_its_own_error(error: BaseException) -> None:
    def write(jobs: Sequence[NewJob]) -> list[str]:
        raise error

    group = GroupCommit(write, refused=())

    assert outcome(group, "a") is error
    assert not group.committing and group.commits == 0
