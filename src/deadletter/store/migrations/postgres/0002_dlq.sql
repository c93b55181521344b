-- What the DLQ handler records: one failure per dead letter, and where it was routed.

-- One row per dead letter handled; the primary key makes the handler idempotent.
CREATE TABLE dlq_failures (
    dead_letter_id  TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    queue           TEXT NOT NULL,
    task            TEXT NOT NULL,
    error_class     TEXT NOT NULL,
    rule            TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    error_type      TEXT,
    error_message   TEXT,
    http_status     INTEGER,
    retry_count     INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    labels          JSONB NOT NULL DEFAULT '{}',
    forensics_key   TEXT,
    created_at      DOUBLE PRECISION NOT NULL,
    failed_at       DOUBLE PRECISION NOT NULL,
    handled_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX dlq_failures_failed_at ON dlq_failures (failed_at);
CREATE INDEX dlq_failures_job ON dlq_failures (job_id);
CREATE INDEX dlq_failures_fingerprint ON dlq_failures (fingerprint, failed_at);
CREATE INDEX dlq_failures_class ON dlq_failures (error_class, failed_at);

-- Failures of one cause, counted together.
CREATE TABLE dlq_error_groups (
    fingerprint     TEXT PRIMARY KEY,
    error_class     TEXT NOT NULL,
    error_type      TEXT,
    sample_message  TEXT,
    queue           TEXT NOT NULL,
    count           INTEGER NOT NULL,
    first_seen      DOUBLE PRECISION NOT NULL,
    last_seen       DOUBLE PRECISION NOT NULL
);

-- RECOVERABLE failures waiting for an operator (the seed's table); one row per job.
CREATE TABLE dlq_recovery_queue (
    job_id          TEXT PRIMARY KEY,
    dead_letter_id  TEXT NOT NULL,
    queue           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'requeued', 'recovered', 'abandoned')),
    reason          TEXT,
    requeue_count   INTEGER NOT NULL DEFAULT 0,
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX dlq_recovery_status ON dlq_recovery_queue (status, updated_at);

-- USER_ERROR failures told to the job's user (the seed's table); an outbox.
CREATE TABLE user_notifications (
    id              TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    user_id         TEXT,
    title           TEXT NOT NULL,
    message         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'no_user')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    sent_at         DOUBLE PRECISION
);
CREATE INDEX user_notifications_due ON user_notifications (next_attempt_at) WHERE status = 'pending';

-- Alerts for operators; an outbox, deduplicated per fingerprint within a window.
CREATE TABLE ops_alerts (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    fingerprint     TEXT,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    occurrences     INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    sent_at         DOUBLE PRECISION
);
CREATE INDEX ops_alerts_due ON ops_alerts (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ops_alerts_dedup ON ops_alerts (kind, fingerprint, created_at);

-- UNKNOWN failures for a person to look at.
CREATE TABLE dlq_review_log (
    dead_letter_id  TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    reviewed_at     DOUBLE PRECISION,
    reviewed_by     TEXT,
    note            TEXT
);
CREATE INDEX dlq_review_open ON dlq_review_log (reviewed_at, created_at);
