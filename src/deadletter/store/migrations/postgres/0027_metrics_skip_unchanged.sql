-- Most updates of queue_jobs change neither a job's status nor its lease token: the
-- mark that an attempt began (one per job), and heartbeats. Each such statement still
-- ran the whole count of 0020 over its rows, every branch finding nothing; skipping it
-- raised PostgreSQL's no-op rate by 16% (docs/benchmarks.md, "Metrics per task"). Every
-- branch needs a changed status or token, so a statement without one counts nothing.
CREATE OR REPLACE FUNCTION task_metrics_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM task_metrics_count(ARRAY(
            SELECT (n.queue, n.task, CASE n.status WHEN 'queued' THEN 'enqueued'
                    ELSE 'dead_lettered' END, NULL)::task_metric_change
            FROM new_rows n WHERE n.status IN ('queued', 'dead_lettered')));
    ELSIF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
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
