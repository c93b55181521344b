-- A lease given back (a stop, a paused queue, a job that never began when its worker
-- was lost) goes from running to retrying with its attempt count restored: it is not a
-- retry, and 0019 counted it as one. A retry keeps the count its lease raised.
DROP TRIGGER task_metrics_jobs_status;

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
    WHERE NEW.status = 'retrying' AND OLD.status = 'running' AND NEW.attempts = OLD.attempts
    UNION ALL
    SELECT NEW.queue, NEW.task, 'dead_lettered', NULL WHERE NEW.status = 'dead_lettered';
END;
