-- The DLQ statistics (store/reports.py) read counters instead of counting every failed
-- job on each call, which took ~0.8 s at a million failures. Triggers keep the counters
-- in the transaction of each change, so that no statement of the hot path changes and
-- nothing that writes these tables (the worker, the handler, requeue, abandon, archive,
-- a person with psql) can leave them behind.
--
-- Writers must not wait for each other on a counter row, nor deadlock over minute rows
-- touched in different orders: so each transaction takes a shard of its own (the first
-- free one, by advisory lock) and writes only that shard's rows. The figures are sums
-- over the shards; one shard's numbers alone mean nothing and may be negative.
-- The triggers are per statement, over its transition tables: a batch of 400 failures
-- is one counter update, not 400 versions of one row.

-- Per shard: failed jobs, their retries (attempts - 1, summed), how many of them have a
-- pending or requeued recovery row (the rest are the seed's permanent failures), and
-- recovery rows by status.
CREATE TABLE dlq_stats_counters (
    shard      INTEGER PRIMARY KEY,
    failed     BIGINT NOT NULL DEFAULT 0,
    retries    BIGINT NOT NULL DEFAULT 0,
    held       BIGINT NOT NULL DEFAULT 0,
    pending    BIGINT NOT NULL DEFAULT 0,
    requeued   BIGINT NOT NULL DEFAULT 0,
    recovered  BIGINT NOT NULL DEFAULT 0,
    abandoned  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO dlq_stats_counters (shard) SELECT generate_series(0, 15);

-- Failed jobs by the minute of their completed_at, floor(completed_at) / 60, per shard:
-- last_24h sums the minutes after the one holding the window's start...
CREATE TABLE dlq_stats_minutes (
    minute  BIGINT NOT NULL,
    shard   INTEGER NOT NULL,
    jobs    BIGINT NOT NULL,
    PRIMARY KEY (minute, shard)
);
-- ...and counts that one minute's failed jobs exactly, here.
CREATE INDEX queue_jobs_failed ON queue_jobs (completed_at) WHERE status = 'failed';

-- What the counters need of a job and of a recovery row.
CREATE TYPE dlq_stats_job AS (id TEXT, attempts INTEGER, completed_at DOUBLE PRECISION);
CREATE TYPE dlq_stats_recovery AS (job_id TEXT, status TEXT);

-- The shard of this transaction: the one it took already, else the first one no other
-- transaction holds; when all are held, wait for one (a lock held to the end of the
-- transaction, as the counter rows' locks would be).
CREATE FUNCTION dlq_stats_shard() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    taken text := current_setting('deadletter.stats_shard', true);
    shard integer;
BEGIN
    IF taken <> '' THEN
        RETURN taken::integer;
    END IF;
    FOR candidate IN 0..15 LOOP
        IF pg_try_advisory_xact_lock(1684829044, candidate) THEN  -- 1684829044: 'dlst'
            PERFORM set_config('deadletter.stats_shard', candidate::text, true);
            RETURN candidate;
        END IF;
    END LOOP;
    shard := floor(random() * 16)::integer;
    PERFORM pg_advisory_xact_lock(1684829044, shard);
    PERFORM set_config('deadletter.stats_shard', shard::text, true);
    RETURN shard;
END;
$$;

-- Failed jobs that a statement added (+1) and removed (-1), as one set.
CREATE FUNCTION dlq_stats_job_changes(added dlq_stats_job[], removed dlq_stats_job[])
RETURNS TABLE (sign INTEGER, id TEXT, attempts INTEGER, completed_at DOUBLE PRECISION)
LANGUAGE sql AS $$
    SELECT 1, * FROM unnest(added) UNION ALL SELECT -1, * FROM unnest(removed)
$$;

-- Count failed jobs in and out. A job leaving `failed` and coming back within one
-- statement (abandon's no-op write) nets to zero and writes nothing.
CREATE FUNCTION dlq_stats_count_jobs(added dlq_stats_job[], removed dlq_stats_job[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d record;
    own integer;
BEGIN
    IF cardinality(added) = 0 AND cardinality(removed) = 0 THEN
        RETURN;  -- most statements: leases, outcomes, heartbeats, enqueues
    END IF;
    own := dlq_stats_shard();
    SELECT coalesce(sum(c.sign), 0) AS failed,
           coalesce(sum(c.sign * (c.attempts - 1)), 0) AS retries,
           coalesce(sum(c.sign) FILTER (WHERE r.job_id IS NOT NULL), 0) AS held
    INTO d
    FROM dlq_stats_job_changes(added, removed) c
    LEFT JOIN dlq_recovery_queue r ON r.job_id = c.id AND r.status IN ('pending', 'requeued');
    IF (d.failed, d.retries, d.held) <> (0, 0, 0) THEN
        UPDATE dlq_stats_counters
        SET failed = failed + d.failed, retries = retries + d.retries, held = held + d.held
        WHERE shard = own;
    END IF;
    INSERT INTO dlq_stats_minutes (minute, shard, jobs)
    SELECT floor(c.completed_at)::bigint / 60, own, sum(c.sign)
    FROM dlq_stats_job_changes(added, removed) c
    WHERE c.completed_at IS NOT NULL
    GROUP BY 1 HAVING sum(c.sign) <> 0
    ON CONFLICT (minute, shard) DO UPDATE SET jobs = dlq_stats_minutes.jobs + excluded.jobs;
END;
$$;

-- Count recovery rows in and out by status; those pending or requeued whose job is failed
-- are `held`. Every writer of a recovery row holds its job's row lock (the handler marks
-- the job failed first, ops/recovery.py writes the job first, archive deletes the job
-- first), so the job's status read here is not changing under a concurrent transaction.
CREATE FUNCTION dlq_stats_count_recovery(
    added dlq_stats_recovery[], removed dlq_stats_recovery[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    IF cardinality(added) = 0 AND cardinality(removed) = 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(sum(c.sign) FILTER (WHERE c.status = 'pending'), 0) AS pending,
           coalesce(sum(c.sign) FILTER (WHERE c.status = 'requeued'), 0) AS requeued,
           coalesce(sum(c.sign) FILTER (WHERE c.status = 'recovered'), 0) AS recovered,
           coalesce(sum(c.sign) FILTER (WHERE c.status = 'abandoned'), 0) AS abandoned,
           coalesce(sum(c.sign) FILTER (WHERE c.status IN ('pending', 'requeued')
                                        AND j.id IS NOT NULL), 0) AS held
    INTO d
    FROM (SELECT 1 AS sign, * FROM unnest(added)
          UNION ALL SELECT -1, * FROM unnest(removed)) c
    LEFT JOIN queue_jobs j ON j.id = c.job_id AND j.status = 'failed';
    IF (d.pending, d.requeued, d.recovered, d.abandoned, d.held) <> (0, 0, 0, 0, 0) THEN
        UPDATE dlq_stats_counters
        SET pending = pending + d.pending, requeued = requeued + d.requeued,
            recovered = recovered + d.recovered, abandoned = abandoned + d.abandoned,
            held = held + d.held
        WHERE shard = (SELECT dlq_stats_shard());
    END IF;
END;
$$;

-- One function per table for its three triggers (PostgreSQL allows transition tables
-- only on a trigger of one event); a branch is planned when it first runs, so each
-- names only the transition tables its event has.
CREATE FUNCTION dlq_stats_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM dlq_stats_count_jobs(ARRAY(
            SELECT (n.id, n.attempts, n.completed_at)::dlq_stats_job
            FROM new_rows n WHERE n.status = 'failed'), '{}');
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM dlq_stats_count_jobs(
            ARRAY(SELECT (n.id, n.attempts, n.completed_at)::dlq_stats_job
                  FROM new_rows n WHERE n.status = 'failed'),
            ARRAY(SELECT (o.id, o.attempts, o.completed_at)::dlq_stats_job
                  FROM old_rows o WHERE o.status = 'failed'));
    ELSE
        PERFORM dlq_stats_count_jobs('{}', ARRAY(
            SELECT (o.id, o.attempts, o.completed_at)::dlq_stats_job
            FROM old_rows o WHERE o.status = 'failed'));
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION dlq_stats_recovery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM dlq_stats_count_recovery(
            ARRAY(SELECT (n.job_id, n.status)::dlq_stats_recovery FROM new_rows n), '{}');
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM dlq_stats_count_recovery(
            ARRAY(SELECT (n.job_id, n.status)::dlq_stats_recovery FROM new_rows n),
            ARRAY(SELECT (o.job_id, o.status)::dlq_stats_recovery FROM old_rows o));
    ELSE
        PERFORM dlq_stats_count_recovery(
            '{}', ARRAY(SELECT (o.job_id, o.status)::dlq_stats_recovery FROM old_rows o));
    END IF;
    RETURN NULL;
END;
$$;

-- Triggers before the backfill: creating them locks each table against writers until this
-- migration commits, so the backfill sees every committed change and no change is lost
-- between the two.
CREATE TRIGGER dlq_stats_jobs_insert AFTER INSERT ON queue_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dlq_stats_jobs();
CREATE TRIGGER dlq_stats_jobs_update AFTER UPDATE ON queue_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dlq_stats_jobs();
CREATE TRIGGER dlq_stats_jobs_delete AFTER DELETE ON queue_jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dlq_stats_jobs();
CREATE TRIGGER dlq_stats_recovery_insert AFTER INSERT ON dlq_recovery_queue
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dlq_stats_recovery();
CREATE TRIGGER dlq_stats_recovery_update AFTER UPDATE ON dlq_recovery_queue
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dlq_stats_recovery();
CREATE TRIGGER dlq_stats_recovery_delete AFTER DELETE ON dlq_recovery_queue
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dlq_stats_recovery();

-- The backfill, into shard 0.
UPDATE dlq_stats_counters c
SET failed = s.failed, retries = s.retries, held = s.held
FROM (SELECT count(*) AS failed, coalesce(sum(j.attempts - 1), 0) AS retries,
             count(r.job_id) AS held
      FROM queue_jobs j
      LEFT JOIN dlq_recovery_queue r ON r.job_id = j.id AND r.status IN ('pending', 'requeued')
      WHERE j.status = 'failed') s
WHERE c.shard = 0;

UPDATE dlq_stats_counters c
SET pending = s.pending, requeued = s.requeued, recovered = s.recovered,
    abandoned = s.abandoned
FROM (SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
             count(*) FILTER (WHERE status = 'requeued') AS requeued,
             count(*) FILTER (WHERE status = 'recovered') AS recovered,
             count(*) FILTER (WHERE status = 'abandoned') AS abandoned
      FROM dlq_recovery_queue) s
WHERE c.shard = 0;

INSERT INTO dlq_stats_minutes (minute, shard, jobs)
SELECT floor(completed_at)::bigint / 60, 0, count(*)
FROM queue_jobs WHERE status = 'failed' AND completed_at IS NOT NULL
GROUP BY 1;
