-- Metrics per queue and task for /metrics (store/metrics.py): counters and histograms
-- kept in the transaction of each change, so that they survive the pruning of
-- succeeded jobs and every `serve` answers with the same figures. Statement triggers
-- count, as in 0006: one upsert per (queue, task, metric, bucket) per statement, so a
-- batch of outcomes costs one statement more, run in the server, and every writer is
-- counted. Each transaction writes the shard it took for the DLQ counters
-- (dlq_stats_shard, 0006), so that concurrent workers never wait on each other's rows.
-- One row per event and bucket: `bucket` is '' for an event without a duration; else
-- the upper bound of the bucket its seconds fell in (not cumulative), `seconds` their
-- sum. An event's count is the sum over its buckets: `started` is the histogram of
-- waits, `succeeded` and `failed` of run times.
CREATE TABLE task_metrics (
    queue   TEXT NOT NULL,
    task    TEXT NOT NULL,
    metric  TEXT NOT NULL,
    bucket  TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    count   BIGINT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (queue, task, metric, bucket, shard)
);

-- The histograms' upper bounds, in seconds: Prometheus' defaults, longer for waits.
CREATE TABLE task_metric_bounds (le DOUBLE PRECISION PRIMARY KEY, label TEXT NOT NULL);
INSERT INTO task_metric_bounds (le, label) VALUES
    (0.005, '0.005'), (0.01, '0.01'), (0.025, '0.025'), (0.05, '0.05'), (0.1, '0.1'),
    (0.25, '0.25'), (0.5, '0.5'), (1, '1.0'), (2.5, '2.5'), (5, '5.0'), (10, '10.0'),
    (30, '30.0'), (60, '60.0'), (300, '300.0'), (900, '900.0'), (3600, '3600.0'),
    ('Infinity', '+Inf');

CREATE TYPE task_metric_change AS (
    queue TEXT, task TEXT, metric TEXT, seconds DOUBLE PRECISION);

-- Count a statement's changes: an event of `metric` each, taking `seconds` unless NULL.
CREATE FUNCTION task_metrics_count(changes task_metric_change[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    own integer;
BEGIN
    IF cardinality(changes) = 0 THEN
        RETURN;  -- heartbeats, releases, and the rest
    END IF;
    own := dlq_stats_shard();
    INSERT INTO task_metrics (queue, task, metric, bucket, shard, count, seconds)
    SELECT c.queue, c.task, c.metric,
           CASE WHEN c.seconds IS NULL THEN '' ELSE (
               SELECT label FROM task_metric_bounds WHERE le >= c.seconds
               ORDER BY le LIMIT 1) END,
           own, count(*), coalesce(sum(c.seconds), 0)
    FROM unnest(changes) c
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (queue, task, metric, bucket, shard)
    DO UPDATE SET count = task_metrics.count + excluded.count,
                  seconds = task_metrics.seconds + excluded.seconds;
END;
$$;

-- A new job is enqueued (a job of another job system may come in dead-lettered); a lease
-- starts a run (its wait: from the time it was due to the lease); an outcome ends it (a
-- success's run time here, a failed attempt's with its attempt row); a reclaim takes a
-- running job from a worker that stopped heartbeating, under a new token.
CREATE FUNCTION task_metrics_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM task_metrics_count(ARRAY(
            SELECT (n.queue, n.task, CASE n.status WHEN 'queued' THEN 'enqueued'
                    ELSE 'dead_lettered' END, NULL)::task_metric_change
            FROM new_rows n WHERE n.status IN ('queued', 'dead_lettered')));
    ELSE
        PERFORM task_metrics_count(ARRAY(
            SELECT c FROM old_rows o JOIN new_rows n ON n.id = o.id
            CROSS JOIN LATERAL (
                SELECT (n.queue, n.task, 'started',
                        greatest(n.attempt_started_at - o.run_at, 0))::task_metric_change
                WHERE n.status = 'running' AND o.status <> 'running'
                UNION ALL
                SELECT (n.queue, n.task, 'succeeded',
                        greatest(n.completed_at - n.attempt_started_at, 0))::task_metric_change
                WHERE n.status = 'succeeded' AND o.status = 'running'
                UNION ALL
                SELECT (n.queue, n.task, 'retried', NULL)::task_metric_change
                WHERE n.status = 'retrying' AND o.status = 'running'
                UNION ALL
                SELECT (n.queue, n.task, 'dead_lettered', NULL)::task_metric_change
                WHERE n.status = 'dead_lettered' AND o.status <> 'dead_lettered'
                UNION ALL
                SELECT (n.queue, n.task, 'lease_lost', NULL)::task_metric_change
                WHERE n.status = 'running' AND o.status = 'running'
                    AND n.lease_token <> o.lease_token) AS x(c)));
    END IF;
    RETURN NULL;
END;
$$;

-- Every failed attempt is recorded as a row of its history, with its run time.
CREATE FUNCTION task_metrics_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_metrics_count(ARRAY(
        SELECT (j.queue, j.task, 'failed',
                greatest(n.ended_at - n.started_at, 0))::task_metric_change
        FROM new_rows n JOIN queue_jobs j ON j.id = n.job_id));
    RETURN NULL;
END;
$$;

CREATE TRIGGER task_metrics_jobs_insert AFTER INSERT ON queue_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_metrics_jobs();
CREATE TRIGGER task_metrics_jobs_update AFTER UPDATE ON queue_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_metrics_jobs();
CREATE TRIGGER task_metrics_attempts_insert AFTER INSERT ON job_attempts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_metrics_attempts();
