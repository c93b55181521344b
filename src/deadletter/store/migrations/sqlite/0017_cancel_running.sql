-- A cancel asked of a running job (ops/cancel.py, store/cancel.py): the lease token of
-- the run asked to stop. The worker that holds that lease reads it at its heartbeat and
-- tells the task (`current_job().cancel_requested`). A later run of the job has a new
-- token, so a request is never carried over to it: NULL, or a token, not a flag.
ALTER TABLE queue_jobs ADD COLUMN cancel_token INTEGER;
