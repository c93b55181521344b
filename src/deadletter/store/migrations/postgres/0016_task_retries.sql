-- A task's own retry budget (`@app.task(max_retries=...)`), NULL when the job takes
-- its queue's: a job requeued from the DLQ gets this budget again (ops/recovery.py),
-- not the queue's. Operator commands run without the task registry, so it is kept here.
ALTER TABLE queue_jobs ADD COLUMN task_max_retries INTEGER;
