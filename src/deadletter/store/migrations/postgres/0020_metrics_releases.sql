-- A lease given back (a stop, a paused queue, a job that never began when its worker
-- was lost) goes from running to retrying with its attempt count restored: it is not a
-- retry, and 0019 counted it as one. A retry keeps the count its lease raised.
CREATE OR REPLACE FUNCTION task_metrics_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
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
