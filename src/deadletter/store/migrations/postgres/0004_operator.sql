-- What operators do with failures (src/deadletter/ops): an audit log, the payloads that
-- an edit replaced, re-drive bookkeeping, indexes for the failure list and groups, and the
-- trigger that settles a requeued job's recovery row.

-- Who requeued, abandoned, edited, exported or reviewed what, when and why; written in
-- the transaction of the action itself.
CREATE TABLE audit_log (
    id       BIGSERIAL PRIMARY KEY,
    at       DOUBLE PRECISION NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    details  JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_target ON audit_log (target, at, id);

-- A payload an operator replaced when requeueing: kept, never overwritten.
CREATE TABLE job_payload_history (
    seq          BIGSERIAL PRIMARY KEY,
    job_id       TEXT NOT NULL,
    payload      JSONB NOT NULL,
    replaced_at  DOUBLE PRECISION NOT NULL,
    replaced_by  TEXT NOT NULL
);
CREATE INDEX job_payload_history_job ON job_payload_history (job_id, seq);

-- How many times operators re-drove a job. The recovery trigger fires only for jobs
-- with requeues > 0, so that jobs never re-driven pay nothing for it.
ALTER TABLE queue_jobs ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;

-- The bulk run (the id of its audit record) that last re-drove the job, so that a run can
-- count how many of its jobs fail again.
ALTER TABLE dlq_recovery_queue ADD COLUMN bulk_run BIGINT;
CREATE INDEX dlq_recovery_bulk_run ON dlq_recovery_queue (bulk_run) WHERE bulk_run IS NOT NULL;

-- Keyset pages of failures, newest first; this index supersedes the one on failed_at alone.
CREATE INDEX dlq_failures_page ON dlq_failures (failed_at, dead_letter_id);
DROP INDEX dlq_failures_failed_at;
CREATE INDEX dlq_failures_queue ON dlq_failures (queue, failed_at);
CREATE INDEX dlq_error_groups_count ON dlq_error_groups (count, fingerprint);
CREATE INDEX dlq_error_groups_last_seen ON dlq_error_groups (last_seen, fingerprint);

-- A requeued job that succeeds is recovered; one that fails again is pending again (the
-- DLQ handler does the same for RECOVERABLE failures; this covers the other classes).
-- A trigger, so that the worker's hot path needs no change and no extra statement.
CREATE FUNCTION dlq_recovery_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dlq_recovery_queue
    SET status = CASE NEW.status WHEN 'succeeded' THEN 'recovered' ELSE 'pending' END,
        updated_at = NEW.completed_at
    WHERE job_id = NEW.id AND status = 'requeued';
    RETURN NULL;
END;
$$;

CREATE TRIGGER dlq_recovery_outcome AFTER UPDATE OF status ON queue_jobs
    FOR EACH ROW
    WHEN (NEW.requeues > 0 AND NEW.status IN ('succeeded', 'failed')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION dlq_recovery_outcome();
