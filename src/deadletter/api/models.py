"""The API's request and response schemas, as the OpenAPI document shows them.

Records the service layer already defines (a failure, a group, a recovery row, an
action's result) are its own dataclasses, used as they are: one definition, and a
stale `docs/openapi.json` when it changes. What is only the API's is here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from deadletter.api.bulkruns import BulkState
from deadletter.model import ErrorClass
from deadletter.ops.audit import AuditEntry
from deadletter.ops.bulk import BulkAction, BulkProgress
from deadletter.ops.export import ExportFormat
from deadletter.ops.failures import FailureItem, Group
from deadletter.ops.filters import MAX_CURSOR, MAX_JOB_IDS, MAX_LIMIT, FailureFilter
from deadletter.ops.recovery import RecoveryEntry
from deadletter.ops.review import ReviewEntry
from deadletter.ops.tokens import Scope, Token

T = TypeVar("T")

# Neither database stores a NUL character in text, and text with an unpaired surrogate
# (which a JSON `\ud800` escape makes) is not UTF-8: both are refused at the edge.
NO_NUL = r"^[^\x00]*$"


def storable(value: T) -> T:
    """`value`, if every string in it (dict keys too) can be stored as UTF-8 text."""
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.items())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, str) and not _storable_text(item):
            raise ValueError("text may not hold NUL or unpaired surrogate characters")
    return value


def _storable_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


STORABLE = AfterValidator(storable)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL), STORABLE]
Text = Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL), STORABLE]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NO_NUL), STORABLE]
# A label filter, `name=value`: the name is up to the first `=`.
Label = Annotated[
    str, StringConstraints(min_length=2, max_length=400, pattern=r"^[^=\x00]+=[^\x00]*$"), STORABLE
]
Epoch = Annotated[float, Field(allow_inf_nan=False, description="epoch seconds")]

# Parameters many routes take.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR,
        pattern=NO_NUL,
        description="`next_cursor` of a page of this list under the same filters",
    ),
]
JobId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]


class Problem(BaseModel):
    """An error: what went wrong and what to do about it."""

    detail: str


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="where: the field, after `query` or `body`")
    msg: str
    type: str


class Invalid(BaseModel):
    """Invalid values, each with where it is (FastAPI's shape of validation errors)."""

    detail: list[FieldProblem]


# -- filters --------------------------------------------------------------------------


def label_pair(label: str) -> tuple[str, str]:
    name, _, value = label.partition("=")
    return name, value


class FailureQuery(BaseModel):
    """Failures matching every field given (none: every failure)."""

    queue: Name | None = None
    task: Name | None = None
    # Not strict even in a body: an enum is named by its value, a string.
    error_class: ErrorClass | None = Field(default=None, strict=False)
    rule: Name | None = Field(default=None, description="the classification rule that matched")
    group: Name | None = Field(default=None, description="a fingerprint, as /api/groups lists them")
    since: Epoch | None = Field(default=None, description="failed at or after (epoch seconds)")
    until: Epoch | None = Field(default=None, description="failed before (epoch seconds)")
    text: Text | None = Field(
        default=None, description="case-insensitive substring of the message, error type or job id"
    )
    job_id: list[Name] = Field(default_factory=list, max_length=MAX_JOB_IDS)
    label: list[Label] = Field(
        default_factory=list,
        max_length=20,
        description="`name=value`: the job's label `name` is `value`, e.g. `site_name=berlin`",
    )

    def to_filter(self) -> FailureFilter:
        return FailureFilter(
            queue=self.queue,
            task=self.task,
            rule=self.rule,
            labels=tuple(label_pair(label) for label in self.label),
            error_class=self.error_class.value if self.error_class else None,
            fingerprint=self.group,
            since=self.since,
            until=self.until,
            text=self.text,
            job_ids=tuple(self.job_id),
        )


class Body(BaseModel):
    """A request body: a misspelt field is an error, not a value quietly ignored, and
    every value has its JSON type (`true` is not a time, `"10"` is not a count)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BulkFilter(FailureQuery):
    """A filter in a request body, where a misspelt field is an error, not a filter
    that quietly matches more than was meant, and `true` is not a time."""

    model_config = Body.model_config


# -- the seed's shapes ----------------------------------------------------------------


class SeedRecovery(BaseModel):
    total_in_recovery: int = Field(description="rows of the recovery queue")
    pending_recovery: int = Field(description="waiting for an operator: requeue or abandon")
    recovered: int = Field(description="requeued, then succeeded")
    abandoned: int = Field(description="given up on, with a reason")
    requeued: int = Field(description="requeued, not run to an end yet")


class SeedStats(BaseModel):
    total_failed: int = Field(description="jobs failed now, each counted once")
    permanent_failures: int = Field(
        description="failed jobs not waiting in the recovery queue (pending or requeued)"
    )
    last_24h: int = Field(description="jobs that failed in the last 24 hours")
    avg_retries: float = Field(description="retries per failed job, on average")
    recovery: SeedRecovery


class PauseInfo(BaseModel):
    reason: str
    paused_by: str
    paused_at: float = Field(description="epoch seconds")


class PausedQueue(PauseInfo):
    queue: str


class StatsResponse(BaseModel):
    dlq: SeedStats
    paused_queues: list[PausedQueue] = Field(
        default=[], description="queues an operator paused (an extra field)"
    )


QueueName = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]


class PauseRequest(Body):
    reason: Reason


class CancelRequest(Body):
    job_ids: list[Name] = Field(default=[], max_length=MAX_LIMIT)
    queue: Name | None = None
    task: Name | None = None
    reason: Reason
    dry_run: bool = False
    limit: int = Field(default=MAX_LIMIT, ge=1, le=MAX_LIMIT)


class RehandleRequest(Body):
    ids: list[Name] = Field(
        default=[],
        max_length=MAX_JOB_IDS,
        description="ids of parked letters, of their dead letters, or of their jobs",
    )
    filter: BulkFilter = Field(
        default=BulkFilter(),
        description="by the job: queue, task, label, job id, failed since/until, and text"
        " in the handler's last error; a parked letter has no class, rule or group yet",
    )
    all: bool = Field(default=False, description="true to mean every parked letter, with no id")
    reason: Reason
    dry_run: bool = False
    limit: int = Field(default=MAX_LIMIT, ge=1, le=MAX_LIMIT)


class ReclassifyRequest(Body):
    reason: Reason
    dry_run: bool = False


class PauseResponse(BaseModel):
    queue: str
    paused: bool = Field(description="the queue's state now")
    changed: bool = Field(description="false when the queue already was in that state")
    pause: PauseInfo | None


class Throughput(BaseModel):
    succeeded: float = Field(description="attempts that succeeded, per second")
    failed: float = Field(description="attempts that failed (retried or dead-lettered), per second")


class QueueItem(BaseModel):
    queue: str
    counts: dict[str, int] = Field(description="jobs by state")
    waiting: int = Field(description="jobs queued or retrying")
    paused: bool
    pause: PauseInfo | None
    consumers: list[str] = Field(description="names of the live workers consuming it")
    throughput: Throughput = Field(
        description="finished attempts per second, summed over the live workers, each over "
        "its last heartbeat interval"
    )


class QueuesResponse(BaseModel):
    queues: list[QueueItem]


class RunningJobItem(BaseModel):
    id: str
    task: str
    queue: str
    started_at: float = Field(description="epoch seconds")
    running_for: float = Field(description="seconds")


class WorkerItem(BaseModel):
    name: str
    host: str
    pid: int
    version: str
    queues: list[str]
    concurrency: int
    started_at: float = Field(description="epoch seconds")
    heartbeat_at: float = Field(description="epoch seconds, the last heartbeat")
    running: list[RunningJobItem] = Field(description="jobs its slots run now")
    throughput: dict[str, Throughput] = Field(
        description="by queue: attempts it finished per second over its last heartbeat interval"
    )


class WorkersResponse(BaseModel):
    workers: list[WorkerItem]
    count: int


class SeedFailure(BaseModel):
    job_id: str
    site_name: str | None = Field(description="the job's `site_name` label")
    error_message: str | None
    retry_count: int = Field(description="attempts after the first")
    created_at: int = Field(description="epoch seconds")
    completed_at: int | None = Field(description="when it failed, epoch seconds")
    queue: str
    task: str
    error_class: str | None
    rule: str | None
    fingerprint: str | None


class SeedFailures(BaseModel):
    failures: list[SeedFailure]
    count: int


# -- pages ----------------------------------------------------------------------------

NextCursor = Field(description="pass as `cursor` for the next page; null on the last page")


class FailurePage(BaseModel):
    failures: list[FailureItem]
    count: int
    next_cursor: str | None = NextCursor


class GroupList(BaseModel):
    groups: list[Group]
    count: int


class RecoveryPage(BaseModel):
    recovery: list[RecoveryEntry]
    count: int
    next_cursor: str | None = NextCursor


class ReviewPage(BaseModel):
    review: list[ReviewEntry]
    count: int
    next_cursor: str | None = NextCursor


class AuditPage(BaseModel):
    audit: list[AuditEntry]
    count: int
    next_cursor: str | None = NextCursor


# -- actions --------------------------------------------------------------------------


class CorrectedPayload(Body):
    """The arguments the task is called with, replacing the job's payload."""

    args: Annotated[list[Any], STORABLE] = Field(default_factory=list)
    kwargs: Annotated[dict[str, Any], STORABLE] = Field(default_factory=dict)


class RequeueRequest(Body):
    reason: Text = ""
    payload: CorrectedPayload | None = Field(
        default=None, description="a corrected payload; the old one is kept in the job's history"
    )


class AbandonRequest(Body):
    reason: Reason


class ReviewRequest(Body):
    note: Text = ""


class DryRunRequest(Body):
    filter: BulkFilter = BulkFilter()
    all: bool = Field(default=False, description="true to mean every failure, with an empty filter")
    sample_size: int = Field(default=10, ge=1, le=100)


class BulkRequest(Body):
    action: BulkAction = Field(strict=False)
    filter: BulkFilter = BulkFilter()
    all: bool = Field(default=False, description="true to mean every failure, with an empty filter")
    reason: Reason
    rate: float = Field(default=10.0, gt=0, le=10_000, description="jobs moved per second")
    halt_ratio: float = Field(
        default=0.25, gt=0, le=1, description="a requeue halts when more re-driven jobs fail again"
    )
    halt_after: int = Field(default=20, ge=1, description="re-driven jobs that must have run first")


class BulkPlanResponse(BaseModel):
    count: int = Field(description="jobs the run would move now")
    sample: list[FailureItem]


class BulkStatus(BaseModel):
    """A bulk run of this server. `state` is `running` or `paused` while it runs."""

    id: str
    state: BulkState
    detail: str | None = Field(description="why it stopped, once it has")
    action: BulkAction = Field(strict=False)
    filter: dict[str, Any]
    reason: str
    started_by: str
    started_at: float
    progress: BulkProgress


class BulkList(BaseModel):
    runs: list[BulkStatus]
    count: int


# -- tokens and health ----------------------------------------------------------------


class ExportRequest(Body):
    filter: BulkFilter = BulkFilter()
    format: ExportFormat = Field(default=ExportFormat.JSONL, strict=False)
    include_payload: bool = Field(
        default=False, description="add each job's payload: stored whole, not redacted"
    )
    reason: Reason = Field(description="why, for the audit log")


class TokenRequest(Body):
    name: Name
    scope: Scope = Field(strict=False)
    reason: Text = Field(default="", description="why, for the audit log")


class RevokeRequest(Body):
    reason: Text = Field(default="", description="why, for the audit log")


class CreatedToken(BaseModel):
    token: Token
    secret: str = Field(description="the token itself, shown this once: store it now")


class TokenList(BaseModel):
    tokens: list[Token]
    count: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
