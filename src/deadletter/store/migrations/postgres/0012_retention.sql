-- Retention (store/prune.py): workers remove succeeded jobs past their queue's
-- retention, oldest first, by queue. A partial index holds only succeeded jobs, so the
-- prune finds the oldest of a queue without reading the rest of the table.
CREATE INDEX queue_jobs_succeeded ON queue_jobs (queue, completed_at) WHERE status = 'succeeded';

-- The hot tables see every job inserted, updated two or three times and, with
-- pruning, deleted: at the defaults (vacuum at 20% dead rows) a table of millions of
-- rows carries hundreds of thousands of dead ones between vacuums, and the lease and
-- prune scans walk them. Vacuum them at 1% (or 10,000 rows), without the cost pauses
-- meant for cold tables, and analyse them as often, so plans follow the table's size.
-- fillfactor 80 leaves room on each page for a row's next version (a job is updated
-- on lease and on finish), so an update mostly stays on its page.
ALTER TABLE queue_jobs SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE job_attempts SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0
);
