"""Retry policy: turn the result of one attempt into the job's next step.

A pure function of the job, the error and the queue's policy, so that it can be
tested without a worker or a database.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from deadletter.classify import Classification, ErrorInfo, Rule, classify
from deadletter.config import QueuePolicy
from deadletter.errors import PermanentFailure, Retry, WorkerLost
from deadletter.model import Attempt, ErrorClass, LeasedJob
from deadletter.redact import Redactor
from deadletter.store.base import DeadLettered, JobOutcome, Retrying

MESSAGE_LIMIT = 2000
# Read past the limit when redacting, so that a secret across it is still recognised.
SECRET_MARGIN = 500


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong in one attempt, captured where it happened."""

    exception: BaseException
    traceback: str
    started_at: float
    ended_at: float
    worker: str


def backoff(attempt: int, policy: QueuePolicy, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random."""
    delay = min(policy.backoff_max, policy.backoff_base * policy.backoff_factor ** (attempt - 1))
    if not policy.jitter or delay <= 0:
        return max(delay, 0.0)
    return delay / 2 + rng.uniform(0, delay / 2)


def decide(
    job: LeasedJob,
    failure: Failure,
    *,
    policy: QueuePolicy,
    rules: Sequence[Rule],
    dlq_max_retries: int,
    rng: random.Random,
    redactor: Redactor,
) -> JobOutcome:
    """The job's next step. The attempt it records is redacted of secrets by
    `redactor`: its message and traceback are written to the database as they are
    here, and read back by every face. Classification sees the error unredacted."""
    exc = failure.exception
    info = ErrorInfo.from_exception(exc)
    verdict = classify(info, rules)
    attempt = _attempt(job, failure, info, verdict, redactor)
    reason = _dead_letter_reason(job, exc, verdict, policy)
    if reason is not None:
        return DeadLettered(job.lease, attempt, reason, dlq_max_retries, _poison(job, exc))
    delay = _delay(job, exc, verdict, policy, rng)
    return Retrying(job.lease, attempt, failure.ended_at + delay)


def _dead_letter_reason(
    job: LeasedJob, exc: BaseException, verdict: Classification, policy: QueuePolicy
) -> str | None:
    if isinstance(exc, PermanentFailure):
        return f"permanent failure: {type(exc).__name__}"
    if _poison(job, exc):
        return f"poison: its worker was lost on its last attempt of {job.attempt}"
    if job.attempt > job.max_retries:
        return f"retries exhausted after {job.attempt} attempts"
    user_error_retried = verdict.error_class is ErrorClass.USER_ERROR and policy.retry_user_errors
    if not verdict.retry and not user_error_retried and not isinstance(exc, Retry):
        return f"not retried: {verdict.error_class.value} (rule {verdict.rule})"
    return None


def _poison(job: LeasedJob, exc: BaseException) -> bool:
    """Its worker was lost on its last attempt: it may be what kills its workers, so it
    is quarantined (its alert is never folded into others), not looped."""
    return job.attempt > job.max_retries and isinstance(exc, WorkerLost)


def _delay(
    job: LeasedJob,
    exc: BaseException,
    verdict: Classification,
    policy: QueuePolicy,
    rng: random.Random,
) -> float:
    if isinstance(exc, Retry) and exc.delay is not None:
        return max(exc.delay, 0.0)
    if verdict.retry_after is not None:
        return verdict.retry_after
    return backoff(job.attempt, policy, rng)


def _attempt(
    job: LeasedJob, failure: Failure, info: ErrorInfo, verdict: Classification, redactor: Redactor
) -> Attempt:
    # Redacted, then cut: a cut first could leave the part of a secret that no rule
    # recognises. What is redacted is bounded, so a huge message costs no more.
    message = redactor.redact_text(info.message[: MESSAGE_LIMIT + SECRET_MARGIN])
    exc_type = type(failure.exception)
    return Attempt(
        job_id=job.id,
        number=job.attempt,
        started_at=failure.started_at,
        ended_at=failure.ended_at,
        worker=failure.worker,
        error_type=f"{exc_type.__module__}.{exc_type.__qualname__}",
        message=message[:MESSAGE_LIMIT],
        traceback=redactor.redact_text(failure.traceback),
        http_status=info.http_status,
        error_class=verdict.error_class,
        rule=verdict.rule,
    )
