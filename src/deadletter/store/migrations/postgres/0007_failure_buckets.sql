-- The dashboard's chart (failures over time by class) and its groups' sparklines read
-- counters by time bucket, kept by triggers as the DLQ statistics are (0006): a few
-- hundred rows per page, not a scan of every failure, at any number of failures.
-- Each transaction writes the rows of its own shard (dlq_stats_shard(), from 0006), so
-- that handlers recording failures at once neither wait for each other on a bucket's row
-- nor deadlock; the figures are sums over the shards.

-- Failures by class per bucket of `width` seconds (60 for the last hour and day, 3,600
-- for the last week), by failed_at: bucket = floor(failed_at) / width.
CREATE TABLE dlq_class_buckets (
    width        INTEGER NOT NULL,
    bucket       BIGINT NOT NULL,
    error_class  TEXT NOT NULL,
    shard        INTEGER NOT NULL,
    failures     BIGINT NOT NULL,
    PRIMARY KEY (width, bucket, error_class, shard)
);

-- Failures by group (fingerprint) per hour: floor(failed_at) / 3600.
CREATE TABLE dlq_group_hours (
    fingerprint  TEXT NOT NULL,
    hour         BIGINT NOT NULL,
    shard        INTEGER NOT NULL,
    failures     BIGINT NOT NULL,
    PRIMARY KEY (fingerprint, hour, shard)
);

-- The recovery queue's page of every status, most recently changed first (status pages
-- have dlq_recovery_status): without it each page sorted every row, ~200 ms at 200,000.
CREATE INDEX dlq_recovery_updated ON dlq_recovery_queue (updated_at, job_id);

CREATE TYPE dlq_failure_change AS (
    error_class TEXT, fingerprint TEXT, failed_at DOUBLE PRECISION
);

-- Count the failures a statement added (+1) and removed (-1). Rows are written in key
-- order, so that two statements of one transaction never lock them in another order.
CREATE FUNCTION dlq_count_failures(added dlq_failure_change[], removed dlq_failure_change[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    own integer;
BEGIN
    IF cardinality(added) = 0 AND cardinality(removed) = 0 THEN
        RETURN;
    END IF;
    own := dlq_stats_shard();
    INSERT INTO dlq_class_buckets (width, bucket, error_class, shard, failures)
    SELECT w.width, floor(c.failed_at)::bigint / w.width, c.error_class, own, sum(c.sign)
    FROM (SELECT 1 AS sign, * FROM unnest(added)
          UNION ALL SELECT -1, * FROM unnest(removed)) c
    CROSS JOIN (VALUES (60), (3600)) AS w(width)
    GROUP BY 1, 2, 3 HAVING sum(c.sign) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (width, bucket, error_class, shard)
    DO UPDATE SET failures = dlq_class_buckets.failures + excluded.failures;
    INSERT INTO dlq_group_hours (fingerprint, hour, shard, failures)
    SELECT c.fingerprint, floor(c.failed_at)::bigint / 3600, own, sum(c.sign)
    FROM (SELECT 1 AS sign, * FROM unnest(added)
          UNION ALL SELECT -1, * FROM unnest(removed)) c
    GROUP BY 1, 2 HAVING sum(c.sign) <> 0
    ORDER BY 1, 2
    ON CONFLICT (fingerprint, hour, shard)
    DO UPDATE SET failures = dlq_group_hours.failures + excluded.failures;
END;
$$;

CREATE FUNCTION dlq_failure_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM dlq_count_failures(ARRAY(
            SELECT (n.error_class, n.fingerprint, n.failed_at)::dlq_failure_change
            FROM new_rows n), '{}');
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM dlq_count_failures(
            ARRAY(SELECT (n.error_class, n.fingerprint, n.failed_at)::dlq_failure_change
                  FROM new_rows n),
            ARRAY(SELECT (o.error_class, o.fingerprint, o.failed_at)::dlq_failure_change
                  FROM old_rows o));
    ELSE
        PERFORM dlq_count_failures('{}', ARRAY(
            SELECT (o.error_class, o.fingerprint, o.failed_at)::dlq_failure_change
            FROM old_rows o));
    END IF;
    RETURN NULL;
END;
$$;

-- Triggers before the backfill: creating them locks the table against writers until
-- this migration commits, so the backfill sees every committed failure.
CREATE TRIGGER dlq_failures_count_insert AFTER INSERT ON dlq_failures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dlq_failure_counts();
CREATE TRIGGER dlq_failures_count_update AFTER UPDATE ON dlq_failures
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dlq_failure_counts();
CREATE TRIGGER dlq_failures_count_delete AFTER DELETE ON dlq_failures
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dlq_failure_counts();

-- The backfill, into shard 0.
INSERT INTO dlq_class_buckets (width, bucket, error_class, shard, failures)
SELECT w.width, floor(f.failed_at)::bigint / w.width, f.error_class, 0, count(*)
FROM dlq_failures f CROSS JOIN (VALUES (60), (3600)) AS w(width)
GROUP BY 1, 2, 3;

INSERT INTO dlq_group_hours (fingerprint, hour, shard, failures)
SELECT fingerprint, floor(failed_at)::bigint / 3600, 0, count(*)
FROM dlq_failures GROUP BY 1, 2;
