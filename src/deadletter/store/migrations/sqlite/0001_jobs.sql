-- Jobs of every queue, dead-letter queues included (the seed's table name).
CREATE TABLE queue_jobs (
    id                 TEXT PRIMARY KEY,
    queue              TEXT NOT NULL,
    task               TEXT NOT NULL,
    payload            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN
                         ('queued', 'running', 'retrying', 'succeeded', 'dead_lettered', 'failed')),
    priority           INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    max_retries        INTEGER NOT NULL,
    dead_letter_queue  TEXT NOT NULL,
    run_at             REAL NOT NULL,
    created_at         REAL NOT NULL,
    started_at         REAL,
    attempt_started_at REAL,
    completed_at       REAL,
    lease_owner        TEXT,
    lease_expires_at   REAL,
    lease_token        INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    labels             TEXT NOT NULL DEFAULT '{}',
    idempotency_key    TEXT UNIQUE
);

-- The lease query reads only ready jobs; a partial index keeps it small.
CREATE INDEX queue_jobs_ready ON queue_jobs (queue, priority DESC, run_at)
    WHERE status IN ('queued', 'retrying');
-- The reclaimer looks for expired leases among running jobs only.
CREATE INDEX queue_jobs_leases ON queue_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX queue_jobs_queue_status ON queue_jobs (queue, status);

-- Every failed attempt of every job, kept across requeues.
CREATE TABLE job_attempts (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT NOT NULL,
    number       INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    ended_at     REAL NOT NULL,
    worker       TEXT NOT NULL,
    error_type   TEXT,
    message      TEXT,
    traceback    TEXT,
    http_status  INTEGER,
    error_class  TEXT,
    rule         TEXT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, seq);
