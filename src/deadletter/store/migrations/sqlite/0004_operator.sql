-- What operators do with failures (src/deadletter/ops): an audit log, the payloads that
-- an edit replaced, re-drive bookkeeping, and indexes for the failure list and groups.

-- Who requeued, abandoned, edited, exported or reviewed what, when and why; written in
-- the transaction of the action itself. `details` is a JSON object.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    details  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_target ON audit_log (target, at, id);

-- A payload an operator replaced when requeueing: kept, never overwritten.
CREATE TABLE job_payload_history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    replaced_at  REAL NOT NULL,
    replaced_by  TEXT NOT NULL
);
CREATE INDEX job_payload_history_job ON job_payload_history (job_id, seq);

-- How many times operators re-drove a job. The recovery trigger fires only for jobs
-- with requeues > 0, so that jobs never re-driven pay nothing for it.
ALTER TABLE queue_jobs ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;

-- The bulk run (the id of its audit record) that last re-drove the job, so that a run can
-- count how many of its jobs fail again.
ALTER TABLE dlq_recovery_queue ADD COLUMN bulk_run INTEGER;
CREATE INDEX dlq_recovery_bulk_run ON dlq_recovery_queue (bulk_run) WHERE bulk_run IS NOT NULL;

-- Keyset pages of failures, newest first; this index supersedes the one on failed_at alone.
CREATE INDEX dlq_failures_page ON dlq_failures (failed_at, dead_letter_id);
DROP INDEX dlq_failures_failed_at;
CREATE INDEX dlq_failures_queue ON dlq_failures (queue, failed_at);
CREATE INDEX dlq_error_groups_count ON dlq_error_groups (count, fingerprint);
CREATE INDEX dlq_error_groups_last_seen ON dlq_error_groups (last_seen, fingerprint);

-- A requeued job's recovery row becomes recovered when the job succeeds, and pending
-- again when it fails again; jobs never re-driven (requeues = 0) pay nothing for it.
CREATE TRIGGER dlq_recovery_outcome AFTER UPDATE OF status ON queue_jobs
WHEN NEW.requeues > 0 AND NEW.status IN ('succeeded', 'failed') AND OLD.status <> NEW.status
BEGIN
    UPDATE dlq_recovery_queue
    SET status = CASE NEW.status WHEN 'succeeded' THEN 'recovered' ELSE 'pending' END,
        updated_at = NEW.completed_at
    WHERE job_id = NEW.id AND status = 'requeued';
END;
