-- Jobs of other job systems (Celery, RQ, Dramatiq) dead-lettered here: where each came
-- from, the host messages that ran it, and failed attempts not yet dead-lettered.

-- The origin of an adopted job: enough to send it back where it came from. `arguments`
-- are the ones it first failed with; an edited payload lives in queue_jobs.payload.
CREATE TABLE job_origins (
    job_id       TEXT PRIMARY KEY,
    system       TEXT NOT NULL,
    queue        TEXT NOT NULL,
    task         TEXT NOT NULL,
    original_id  TEXT NOT NULL,
    arguments    JSONB NOT NULL,
    options      JSONB NOT NULL DEFAULT '{}',
    adopted_at   DOUBLE PRECISION NOT NULL
);

-- Every host message that ran an adopted job: the original one and each re-drive.
-- `sent_at` is set once a re-drive's message is handed to the host's broker, so that a
-- re-drive job run twice sends its message once.
CREATE TABLE host_messages (
    system      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    sent_at     DOUBLE PRECISION,
    PRIMARY KEY (system, message_id)
);
CREATE INDEX host_messages_job ON host_messages (job_id);

-- Failed attempts that the host retries, kept until the host gives up (they then become
-- the job's attempts) or succeeds (they are dropped). `event_id` makes a replay of the
-- spool, or a signal delivered twice, record an attempt once.
CREATE TABLE host_attempts (
    event_id     TEXT PRIMARY KEY,
    system       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    started_at   DOUBLE PRECISION NOT NULL,
    ended_at     DOUBLE PRECISION NOT NULL,
    worker       TEXT NOT NULL,
    error_type   TEXT,
    message      TEXT,
    traceback    TEXT,
    http_status  INTEGER,
    error_class  TEXT,
    rule         TEXT,
    job_id       TEXT
);
CREATE INDEX host_attempts_message ON host_attempts (system, message_id, ended_at);

-- A requeue of an adopted job (one, by filter, or bulk: all go through this status
-- change) enqueues, in its own transaction, the durable job that sends it back to its
-- host. One per requeue: the id carries the requeue count. 100 tries, spaced by the
-- queue's backoff (up to 5 minutes by default): a broker down for hours delays the
-- re-drive, and only after ~8 hours is it a failure of its own, on deadletter.redrive-dlq.
CREATE FUNCTION host_redrive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM job_origins WHERE job_id = NEW.id) THEN
        RETURN NULL;
    END IF;
    INSERT INTO queue_jobs (id, queue, task, payload, status, priority, max_retries,
        dead_letter_queue, run_at, created_at, labels)
    VALUES ('redrive-' || NEW.id || '-' || NEW.requeues, 'deadletter.redrive',
        'deadletter.redrive',
        jsonb_build_object('args', jsonb_build_array(NEW.id, NEW.requeues),
                           'kwargs', '{}'::jsonb),
        'queued', NEW.priority, 100, 'deadletter.redrive-dlq', NEW.run_at, NEW.run_at, '{}')
    ON CONFLICT DO NOTHING;
    PERFORM pg_notify('deadletter_jobs', 'deadletter.redrive');
    RETURN NULL;
END;
$$;

CREATE TRIGGER host_redrive AFTER UPDATE OF status ON queue_jobs
    FOR EACH ROW
    WHEN (OLD.status = 'failed' AND NEW.status = 'queued')
    EXECUTE FUNCTION host_redrive();
