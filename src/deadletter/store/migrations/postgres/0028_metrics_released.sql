-- A lease given back unstarted (store/postgres.py RELEASE and GIVE_BACK: a stop, a
-- paused queue, a job that never began when its worker was lost) goes from running to
-- queued or retrying with its attempt count restored; its next lease counts `started`
-- again, so `started` counted leases, not attempts run. `released` counts those given
-- back: started - released = attempts that ran. Counting `started` at the begin instead
-- would run this function for every begin statement, which 0027 skips (its +16% no-op
-- rate). 0027's function with one branch more: a release changes the status, so it
-- passes the early skip, and it is no retry (its count went down, 0020).
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
