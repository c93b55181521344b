-- Counting a new job was a third of the server's CPU in a single enqueue: the statement
-- trigger built an array of changes and handed it to task_metrics_count (0019), which
-- unnested it and looked up a histogram bucket that an `enqueued` event never has. An
-- INSERT now upserts its counts from the transition table directly: 223 -> 210 us of
-- server CPU per single enqueue, medians of 3 rounds (docs/benchmarks.md, "Counting an
-- enqueue"). Same counts as 0028's INSERT branch: `enqueued` for a queued job,
-- `dead_lettered` for a job of another system that comes in dead-lettered; the rows in
-- the order of the primary key, so that concurrent inserts lock them in one order.
CREATE FUNCTION task_metrics_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_metrics AS m (queue, task, metric, bucket, shard, count, seconds)
    SELECT n.queue, n.task,
           CASE n.status WHEN 'queued' THEN 'enqueued' ELSE 'dead_lettered' END,
           '', dlq_stats_shard(), count(*), 0
    FROM new_rows n WHERE n.status IN ('queued', 'dead_lettered')
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (queue, task, metric, bucket, shard)
    DO UPDATE SET count = m.count + excluded.count;
    RETURN NULL;
END;
$$;
DROP TRIGGER task_metrics_jobs_insert ON queue_jobs;
CREATE TRIGGER task_metrics_jobs_insert AFTER INSERT ON queue_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_metrics_jobs_inserted();
-- 0028's function without its INSERT branch: it counts updates alone now.
CREATE OR REPLACE FUNCTION task_metrics_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
               WHERE n.status <> o.status OR n.lease_token <> o.lease_token) THEN
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
                WHERE n.status = 'retrying' AND o.status = 'running' AND n.attempts = o.attempts
                UNION ALL
                SELECT (n.queue, n.task, 'released', NULL)::task_metric_change
                WHERE n.status IN ('queued', 'retrying') AND o.status = 'running'
                    AND n.attempts = o.attempts - 1
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
