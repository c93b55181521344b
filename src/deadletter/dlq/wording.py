"""What a handled dead letter says to its user and to operators, and which alerts fold
into which: policy, worded here and handed to the store as values (model.Notice,
model.FailureAlert), which the store inserts once per dead letter.
"""

from __future__ import annotations

from deadletter.model import AlertKind, AlertText, FailureAlert, FailureRecord, Notice, Route

# Alerts about one fingerprint within the window are folded into the latest one;
# poison alerts only into poison alerts, so that a quarantine is never hidden.
POISON = frozenset({AlertKind.POISON.value})
FAILURE = frozenset({AlertKind.SYSTEM_ERROR.value, AlertKind.NEW_FAILURE.value})


def notice(task: str, *, http_status: object, summary: str) -> Notice:
    """A notification a user can act on, without internals."""
    what = task.rsplit(".", 1)[-1].replace("_", " ")
    if http_status == 404:
        cause = "something it needs could not be found"
    elif http_status in (400, 422):
        cause = "the request was not valid"
    else:
        cause = "its input was not valid"
    return Notice(
        title=f"We could not complete your {task} request",
        message=f"Your {what} job could not be completed: {cause}. Details: {summary}",
    )


def alert(record: FailureRecord, *, summary: str, poison: bool) -> FailureAlert:
    """The alert `record` raises: always if it is poison or routed to ops, otherwise
    only when its fingerprint is new. `summary` is redacted of PII."""
    if poison:
        what = "Poison job quarantined (it kept killing its worker)"
        quarantined = _text(record, summary, AlertKind.POISON, what)
        return FailureAlert(quarantined, quarantined, POISON, always=True)
    return FailureAlert(
        first=_text(record, summary, AlertKind.NEW_FAILURE, "New kind of failure"),
        again=_text(record, summary, AlertKind.SYSTEM_ERROR, "System error"),
        folds_into=FAILURE,
        always=record.route is Route.ALERT_OPS,
    )


def _text(f: FailureRecord, summary: str, kind: AlertKind, what: str) -> AlertText:
    body = (
        f"{summary}\nreason: {f.reason}\n"
        f"queue: {f.queue}  task: {f.task}  job: {f.job_id}\n"
        f"class: {f.error_class.value} (rule {f.rule})  group: {f.fingerprint}"
    )
    return AlertText(
        id=f"{kind.value}-{f.dead_letter_id}",
        kind=kind.value,
        title=f"{what} on {f.queue}: {f.error_class.value}",
        body=body,
    )
