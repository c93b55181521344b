-- Metrics per queue and task for /metrics (store/metrics.py): counters and histograms
-- kept in the transaction of each change, so that they survive the pruning of
-- succeeded jobs and every `serve` answers with the same figures. Triggers count, as
-- in 0006, so that no statement of the hot path changes and every writer is counted.
-- SQLite has one writer at a time: everything goes to shard 0 (PostgreSQL's 0019 has
-- shards). One row per event and bucket, so that an event costs one upsert: `bucket` is
-- '' for an event without a duration; else the upper bound of the bucket its seconds
-- fell in (not cumulative), `seconds` their sum. An event's count is the sum over its
-- buckets: `started` is the histogram of waits, `succeeded` and `failed` of run times.
CREATE TABLE task_metrics (
    queue   TEXT NOT NULL,
    task    TEXT NOT NULL,
    metric  TEXT NOT NULL,
    bucket  TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (queue, task, metric, bucket, shard)
);

-- The histograms' upper bounds, in seconds: Prometheus' defaults, longer for waits.
CREATE TABLE task_metric_bounds (le REAL PRIMARY KEY, label TEXT NOT NULL);
INSERT INTO task_metric_bounds (le, label) VALUES
    (0.005, '0.005'), (0.01, '0.01'), (0.025, '0.025'), (0.05, '0.05'), (0.1, '0.1'),
    (0.25, '0.25'), (0.5, '0.5'), (1, '1.0'), (2.5, '2.5'), (5, '5.0'), (10, '10.0'),
    (30, '30.0'), (60, '60.0'), (300, '300.0'), (900, '900.0'), (3600, '3600.0'),
    (9e999, '+Inf');

-- A change to count: one event of `metric`, taking `seconds` unless NULL. Written
-- once, in an INSTEAD OF trigger on a view that nothing reads.
CREATE VIEW task_metric_changes (queue, task, metric, seconds) AS
    SELECT queue, task, '', 0.0 FROM queue_jobs WHERE 0;

CREATE TRIGGER task_metrics_count INSTEAD OF INSERT ON task_metric_changes
BEGIN
    INSERT INTO task_metrics (queue, task, metric, bucket, shard, count, seconds)
    VALUES (NEW.queue, NEW.task, NEW.metric,
            CASE WHEN NEW.seconds IS NULL THEN '' ELSE (
                SELECT label FROM task_metric_bounds WHERE le >= NEW.seconds
                ORDER BY le LIMIT 1) END,
            0, 1, coalesce(NEW.seconds, 0))
    ON CONFLICT (queue, task, metric, bucket, shard)
    DO UPDATE SET count = count + 1, seconds = seconds + excluded.seconds;
END;

-- A new job is enqueued; a job of another job system may come in dead-lettered already.
CREATE TRIGGER task_metrics_jobs_insert AFTER INSERT ON queue_jobs
WHEN NEW.status IN ('queued', 'dead_lettered')
BEGIN
    INSERT INTO task_metric_changes
    VALUES (NEW.queue, NEW.task,
            CASE NEW.status WHEN 'queued' THEN 'enqueued' ELSE 'dead_lettered' END, NULL);
END;

-- A lease starts a run (its wait: from the time it was due to now); an outcome ends it
-- (a success's run time here, a failed attempt's with its attempt row, below).
CREATE TRIGGER task_metrics_jobs_status AFTER UPDATE OF status ON queue_jobs
WHEN OLD.status IS NOT NEW.status
    AND NEW.status IN ('running', 'succeeded', 'retrying', 'dead_lettered')
BEGIN
    INSERT INTO task_metric_changes
    SELECT NEW.queue, NEW.task, 'started',
           max(NEW.attempt_started_at - OLD.run_at, 0)
    WHERE NEW.status = 'running'
    UNION ALL
    SELECT NEW.queue, NEW.task, 'succeeded',
           max(NEW.completed_at - NEW.attempt_started_at, 0)
    WHERE NEW.status = 'succeeded' AND OLD.status = 'running'
    UNION ALL
    SELECT NEW.queue, NEW.task, 'retried', NULL
    WHERE NEW.status = 'retrying' AND OLD.status = 'running'
    UNION ALL
    SELECT NEW.queue, NEW.task, 'dead_lettered', NULL WHERE NEW.status = 'dead_lettered';
END;

-- A lease reclaimed from a worker that stopped heartbeating: the job stays running, under
-- a new token (store/sqlite.py RECLAIM).
CREATE TRIGGER task_metrics_lease_lost AFTER UPDATE OF lease_token ON queue_jobs
WHEN OLD.status = 'running' AND NEW.status = 'running' AND OLD.lease_token <> NEW.lease_token
BEGIN
    INSERT INTO task_metric_changes VALUES (NEW.queue, NEW.task, 'lease_lost', NULL);
END;

-- Every failed attempt is recorded as a row of its history, with its run time.
CREATE TRIGGER task_metrics_attempts AFTER INSERT ON job_attempts
BEGIN
    INSERT INTO task_metric_changes
    SELECT queue, task, 'failed', max(NEW.ended_at - NEW.started_at, 0)
    FROM queue_jobs WHERE id = NEW.job_id;
END;
