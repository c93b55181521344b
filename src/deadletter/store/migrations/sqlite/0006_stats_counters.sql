-- The DLQ statistics (store/reports.py) read counters instead of counting every failed
-- job on each call, which took ~0.7 s at a million failures. Triggers keep the counters
-- in the transaction of each change, so that no statement of the hot path changes and
-- nothing that writes these tables (the worker, the handler, requeue, abandon, archive,
-- a person with sqlite3) can leave them behind.
--
-- The tables are PostgreSQL's (see its 0006), where transactions write shards of their
-- own; SQLite has one writer at a time, so everything goes to shard 0.

-- Failed jobs, their retries (attempts - 1, summed), how many of them have a pending or
-- requeued recovery row (the rest are the seed's permanent failures), and recovery rows
-- by status.
CREATE TABLE dlq_stats_counters (
    shard      INTEGER PRIMARY KEY,
    failed     INTEGER NOT NULL DEFAULT 0,
    retries    INTEGER NOT NULL DEFAULT 0,
    held       INTEGER NOT NULL DEFAULT 0,
    pending    INTEGER NOT NULL DEFAULT 0,
    requeued   INTEGER NOT NULL DEFAULT 0,
    recovered  INTEGER NOT NULL DEFAULT 0,
    abandoned  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO dlq_stats_counters (shard) VALUES (0);

-- Failed jobs by the minute of their completed_at, floor(completed_at) / 60: last_24h
-- sums the minutes after the one holding the window's start...
CREATE TABLE dlq_stats_minutes (
    minute  INTEGER NOT NULL,
    shard   INTEGER NOT NULL,
    jobs    INTEGER NOT NULL,
    PRIMARY KEY (minute, shard)
);
-- ...and counts that one minute's failed jobs exactly, here.
CREATE INDEX queue_jobs_failed ON queue_jobs (completed_at) WHERE status = 'failed';

-- The counting is written once, in INSTEAD OF triggers on two views that nothing reads:
-- a table's trigger inserts a change (+1 for a row counted in, -1 out) into the view.
CREATE VIEW dlq_stats_job_changes (sign, id, attempts, completed_at) AS
    SELECT 0, id, attempts, completed_at FROM queue_jobs WHERE 0;

CREATE TRIGGER dlq_stats_count_job INSTEAD OF INSERT ON dlq_stats_job_changes
BEGIN
    UPDATE dlq_stats_counters
    SET failed = failed + NEW.sign,
        retries = retries + NEW.sign * (NEW.attempts - 1),
        held = held + NEW.sign * EXISTS (
            SELECT 1 FROM dlq_recovery_queue
            WHERE job_id = NEW.id AND status IN ('pending', 'requeued'))
    WHERE shard = 0;
    INSERT INTO dlq_stats_minutes (minute, shard, jobs)
    SELECT CAST(NEW.completed_at AS INTEGER) / 60, 0, NEW.sign
    WHERE NEW.completed_at IS NOT NULL
    ON CONFLICT (minute, shard) DO UPDATE SET jobs = jobs + excluded.jobs;
END;

CREATE VIEW dlq_stats_recovery_changes (sign, job_id, status) AS
    SELECT 0, job_id, status FROM dlq_recovery_queue WHERE 0;

CREATE TRIGGER dlq_stats_count_recovery INSTEAD OF INSERT ON dlq_stats_recovery_changes
BEGIN
    UPDATE dlq_stats_counters
    SET pending = pending + NEW.sign * (NEW.status = 'pending'),
        requeued = requeued + NEW.sign * (NEW.status = 'requeued'),
        recovered = recovered + NEW.sign * (NEW.status = 'recovered'),
        abandoned = abandoned + NEW.sign * (NEW.status = 'abandoned'),
        held = held + NEW.sign * (NEW.status IN ('pending', 'requeued')) * EXISTS (
            SELECT 1 FROM queue_jobs WHERE id = NEW.job_id AND status = 'failed')
    WHERE shard = 0;
END;

-- Only rows failed before or after the change count: the WHEN clauses keep the rest of
-- the queue's writes (leases, outcomes, heartbeats) from running any trigger body.
CREATE TRIGGER dlq_stats_jobs_insert AFTER INSERT ON queue_jobs WHEN NEW.status = 'failed'
BEGIN
    INSERT INTO dlq_stats_job_changes VALUES (1, NEW.id, NEW.attempts, NEW.completed_at);
END;

CREATE TRIGGER dlq_stats_jobs_update AFTER UPDATE OF status, attempts, completed_at ON queue_jobs
WHEN (OLD.status = 'failed' OR NEW.status = 'failed')
    AND (OLD.status IS NOT NEW.status OR OLD.attempts IS NOT NEW.attempts
         OR OLD.completed_at IS NOT NEW.completed_at)
BEGIN
    INSERT INTO dlq_stats_job_changes
    SELECT -1, OLD.id, OLD.attempts, OLD.completed_at WHERE OLD.status = 'failed'
    UNION ALL
    SELECT 1, NEW.id, NEW.attempts, NEW.completed_at WHERE NEW.status = 'failed';
END;

CREATE TRIGGER dlq_stats_jobs_delete AFTER DELETE ON queue_jobs WHEN OLD.status = 'failed'
BEGIN
    INSERT INTO dlq_stats_job_changes VALUES (-1, OLD.id, OLD.attempts, OLD.completed_at);
END;

CREATE TRIGGER dlq_stats_recovery_insert AFTER INSERT ON dlq_recovery_queue
BEGIN
    INSERT INTO dlq_stats_recovery_changes VALUES (1, NEW.job_id, NEW.status);
END;

CREATE TRIGGER dlq_stats_recovery_update AFTER UPDATE OF job_id, status ON dlq_recovery_queue
WHEN OLD.status IS NOT NEW.status OR OLD.job_id IS NOT NEW.job_id
BEGIN
    INSERT INTO dlq_stats_recovery_changes
    VALUES (-1, OLD.job_id, OLD.status), (1, NEW.job_id, NEW.status);
END;

CREATE TRIGGER dlq_stats_recovery_delete AFTER DELETE ON dlq_recovery_queue
BEGIN
    INSERT INTO dlq_stats_recovery_changes VALUES (-1, OLD.job_id, OLD.status);
END;

-- The backfill: the migration holds the write lock, so nothing changes meanwhile.
UPDATE dlq_stats_counters
SET (failed, retries, held) = (
    SELECT count(*), coalesce(sum(j.attempts - 1), 0), count(r.job_id)
    FROM queue_jobs j
    LEFT JOIN dlq_recovery_queue r ON r.job_id = j.id AND r.status IN ('pending', 'requeued')
    WHERE j.status = 'failed');

UPDATE dlq_stats_counters
SET (pending, requeued, recovered, abandoned) = (
    SELECT count(*) FILTER (WHERE status = 'pending'),
           count(*) FILTER (WHERE status = 'requeued'),
           count(*) FILTER (WHERE status = 'recovered'),
           count(*) FILTER (WHERE status = 'abandoned')
    FROM dlq_recovery_queue);

INSERT INTO dlq_stats_minutes (minute, shard, jobs)
SELECT CAST(completed_at AS INTEGER) / 60, 0, count(*)
FROM queue_jobs WHERE status = 'failed' AND completed_at IS NOT NULL
GROUP BY 1;
