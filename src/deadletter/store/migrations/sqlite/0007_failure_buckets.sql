-- The dashboard's chart (failures over time by class) and its groups' sparklines read
-- counters by time bucket, kept by triggers as the DLQ statistics are (0006): a few
-- hundred rows per page, not a scan of every failure, at any number of failures.
-- The tables are PostgreSQL's (see its 0007), where transactions write shards of their
-- own; SQLite has one writer at a time, so everything goes to shard 0.

-- Failures by class per bucket of `width` seconds (60 for the last hour and day, 3,600
-- for the last week), by failed_at: bucket = floor(failed_at) / width.
CREATE TABLE dlq_class_buckets (
    width        INTEGER NOT NULL,
    bucket       INTEGER NOT NULL,
    error_class  TEXT NOT NULL,
    shard        INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    PRIMARY KEY (width, bucket, error_class, shard)
);

-- Failures by group (fingerprint) per hour: floor(failed_at) / 3600.
CREATE TABLE dlq_group_hours (
    fingerprint  TEXT NOT NULL,
    hour         INTEGER NOT NULL,
    shard        INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, hour, shard)
);

-- The recovery queue's page of every status, most recently changed first (status pages
-- have dlq_recovery_status): without it each page sorted every row, ~200 ms at 200,000.
CREATE INDEX dlq_recovery_updated ON dlq_recovery_queue (updated_at, job_id);

-- The counting is written once, in an INSTEAD OF trigger on a view that nothing reads:
-- each trigger of dlq_failures inserts a change (+1 for a failure in, -1 out) into it.
CREATE VIEW dlq_failure_changes (sign, error_class, fingerprint, failed_at) AS
    SELECT 0, error_class, fingerprint, failed_at FROM dlq_failures WHERE 0;

CREATE TRIGGER dlq_count_failure INSTEAD OF INSERT ON dlq_failure_changes
BEGIN
    INSERT INTO dlq_class_buckets (width, bucket, error_class, shard, failures)
    VALUES (60, CAST(NEW.failed_at AS INTEGER) / 60, NEW.error_class, 0, NEW.sign),
           (3600, CAST(NEW.failed_at AS INTEGER) / 3600, NEW.error_class, 0, NEW.sign)
    ON CONFLICT (width, bucket, error_class, shard)
    DO UPDATE SET failures = failures + excluded.failures;
    INSERT INTO dlq_group_hours (fingerprint, hour, shard, failures)
    VALUES (NEW.fingerprint, CAST(NEW.failed_at AS INTEGER) / 3600, 0, NEW.sign)
    ON CONFLICT (fingerprint, hour, shard) DO UPDATE SET failures = failures + excluded.failures;
END;

CREATE TRIGGER dlq_failures_count_insert AFTER INSERT ON dlq_failures
BEGIN
    INSERT INTO dlq_failure_changes VALUES (1, NEW.error_class, NEW.fingerprint, NEW.failed_at);
END;

CREATE TRIGGER dlq_failures_count_update AFTER UPDATE OF error_class, fingerprint, failed_at
ON dlq_failures
BEGIN
    INSERT INTO dlq_failure_changes
    VALUES (-1, OLD.error_class, OLD.fingerprint, OLD.failed_at),
           (1, NEW.error_class, NEW.fingerprint, NEW.failed_at);
END;

CREATE TRIGGER dlq_failures_count_delete AFTER DELETE ON dlq_failures
BEGIN
    INSERT INTO dlq_failure_changes VALUES (-1, OLD.error_class, OLD.fingerprint, OLD.failed_at);
END;

-- The backfill: the migration holds the write lock, so nothing changes meanwhile.
INSERT INTO dlq_class_buckets (width, bucket, error_class, shard, failures)
SELECT w.width, CAST(f.failed_at AS INTEGER) / w.width, f.error_class, 0, count(*)
FROM dlq_failures f CROSS JOIN (SELECT 60 AS width UNION ALL SELECT 3600) w
GROUP BY 1, 2, 3;

INSERT INTO dlq_group_hours (fingerprint, hour, shard, failures)
SELECT fingerprint, CAST(failed_at AS INTEGER) / 3600, 0, count(*)
FROM dlq_failures GROUP BY 1, 2;
