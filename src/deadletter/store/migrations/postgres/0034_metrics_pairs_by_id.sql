-- The update trigger paired each row's old and new versions with a join of the two
-- transition tables. PL/pgSQL plans such a query once per connection, for the row
-- counts of its first call: after a statement of one row (a lease of a single job, a
-- single release) the join stays a nested loop on that connection, which compares
-- every old row with every new one: a lease of 400 jobs took 22-24 ms instead of 10,
-- and a heartbeat's extension of 10,000 leases 7.9-8.2 s, holding their row locks.
-- Grouping the two tables' rows by id pairs them in time linear in the rows whatever the
-- plan (a hash or a sort), with the same counts as 0032's function (docs/benchmarks.md,
-- "The metrics trigger's pairing, linear").
CREATE OR REPLACE FUNCTION task_metrics_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_metrics_count(ARRAY(
        SELECT c FROM (
            SELECT min(r.queue) FILTER (WHERE NOT r.old) AS queue,
                   min(r.task) FILTER (WHERE NOT r.old) AS task,
                   min(r.status) FILTER (WHERE r.old) AS old_status,
                   min(r.status) FILTER (WHERE NOT r.old) AS status,
                   min(r.lease_token) FILTER (WHERE r.old) AS old_token,
                   min(r.lease_token) FILTER (WHERE NOT r.old) AS token,
                   min(r.attempts) FILTER (WHERE r.old) AS old_attempts,
                   min(r.attempts) FILTER (WHERE NOT r.old) AS attempts,
                   min(r.run_at) FILTER (WHERE r.old) AS old_run_at,
                   min(r.attempt_started_at) FILTER (WHERE NOT r.old) AS attempt_started_at,
                   min(r.completed_at) FILTER (WHERE NOT r.old) AS completed_at
            FROM (SELECT true AS old, o.id, o.queue, o.task, o.status, o.lease_token,
                         o.attempts, o.run_at, o.attempt_started_at, o.completed_at
                  FROM old_rows o
                  UNION ALL
                  SELECT false, n.id, n.queue, n.task, n.status, n.lease_token,
                         n.attempts, n.run_at, n.attempt_started_at, n.completed_at
                  FROM new_rows n) AS r
            GROUP BY r.id) AS n
        CROSS JOIN LATERAL (
            SELECT (n.queue, n.task, 'started',
                    greatest(n.attempt_started_at - n.old_run_at, 0))::task_metric_change
            WHERE n.status = 'running' AND n.old_status <> 'running'
            UNION ALL
            SELECT (n.queue, n.task, 'succeeded',
                    greatest(n.completed_at - n.attempt_started_at, 0))::task_metric_change
            WHERE n.status = 'succeeded' AND n.old_status = 'running'
            UNION ALL
            SELECT (n.queue, n.task, 'retried', NULL)::task_metric_change
            WHERE n.status = 'retrying' AND n.old_status = 'running'
                AND n.attempts = n.old_attempts
            UNION ALL
            SELECT (n.queue, n.task, 'released', NULL)::task_metric_change
            WHERE n.status IN ('queued', 'retrying') AND n.old_status = 'running'
                AND n.attempts = n.old_attempts - 1
            UNION ALL
            SELECT (n.queue, n.task, 'dead_lettered', NULL)::task_metric_change
            WHERE n.status = 'dead_lettered' AND n.old_status <> 'dead_lettered'
            UNION ALL
            SELECT (n.queue, n.task, 'lease_lost', NULL)::task_metric_change
            WHERE n.status = 'running' AND n.old_status = 'running'
                AND n.token <> n.old_token) AS x(c)));
    RETURN NULL;
END;
$$;
