"""The seed's JSON shapes for statistics and recent failures (plus extra fields)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deadletter.model import JSONObject, JSONValue
from deadletter.store.fleet import QueuePause
from deadletter.store.reports import DlqStats, FailureRow


def stats_json(stats: DlqStats, paused: Mapping[str, QueuePause] | None = None) -> JSONObject:
    """`GET /api/queue/dlq/stats`: field names and nesting as in the seed; with `paused`,
    the paused queues beside them (an extra field)."""
    figures: JSONObject = {"dlq": dlq_figures(stats)}
    if paused is not None:
        figures["paused_queues"] = [
            {
                "queue": p.queue,
                "reason": p.reason,
                "paused_by": p.paused_by,
                "paused_at": p.paused_at,
            }
            for p in paused.values()
        ]
    return figures


def dlq_figures(stats: DlqStats) -> JSONObject:
    """The statistics under the seed's names (`stats_json`'s `dlq`)."""
    recovery = stats.recovery
    return {
        "total_failed": stats.total_failed,
        "permanent_failures": stats.permanent_failures,
        "last_24h": stats.last_24h,
        "avg_retries": stats.avg_retries,
        "recovery": {
            "total_in_recovery": sum(recovery.values()),
            "pending_recovery": recovery["pending"],
            "recovered": recovery["recovered"],
            "abandoned": recovery["abandoned"],
            "requeued": recovery["requeued"],
        },
    }


def failures_json(rows: Sequence[FailureRow]) -> JSONObject:
    """`GET /api/queue/dlq/failures`: epoch-second timestamps, as in the seed."""
    failures: list[JSONValue] = [
        {
            "job_id": row.job_id,
            "site_name": row.labels.get("site_name"),
            "error_message": row.error_message or row.last_error,
            "retry_count": max(row.attempts - 1, 0),
            "created_at": int(row.created_at),
            "completed_at": int(row.completed_at) if row.completed_at else None,
            "queue": row.queue,
            "task": row.task,
            "error_class": row.error_class,
            "rule": row.rule,
            "fingerprint": row.fingerprint,
        }
        for row in rows
    ]
    return {"failures": failures, "count": len(failures)}
