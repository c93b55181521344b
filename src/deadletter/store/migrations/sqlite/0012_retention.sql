-- Retention (store/prune.py): workers remove succeeded jobs past their queue's
-- retention, oldest first, by queue. A partial index holds only succeeded jobs, so the
-- prune finds the oldest of a queue without reading the rest of the table.
CREATE INDEX queue_jobs_succeeded ON queue_jobs (queue, completed_at) WHERE status = 'succeeded';
