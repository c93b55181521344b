-- A lease given back unstarted (store/sqlite.py RELEASE: a stop, a paused queue, a job
-- that never began when its worker was lost) goes from running to queued or retrying
-- with its attempt count restored; its next lease counts `started` again, so `started`
-- counted leases, not attempts run. `released` counts those given back: started -
-- released = attempts that ran. A trigger of its own: 0020's counts no change to
-- 'queued', and a release is none of its events (not a retry: its count went down).
CREATE TRIGGER task_metrics_released AFTER UPDATE OF status ON queue_jobs
WHEN OLD.status = 'running' AND NEW.status IN ('queued', 'retrying')
    AND NEW.attempts = OLD.attempts - 1
BEGIN
    INSERT INTO task_metric_changes VALUES (NEW.queue, NEW.task, 'released', NULL);
END;
