-- The reclaimer's index of leases held every running job (WHERE status = 'running'), so
-- the planner could pick it for the fenced batch updates too (extend, begin, release,
-- finish: WHERE j.id = l.id AND ... AND j.status = 'running'). Where ANALYZE last saw no
-- job running (a quiet moment; a worker finishes its whole batch before it leases the
-- next), it estimates one running row, and the generic plan of each prepared batch
-- statement scanned that index, for every row of the batch, instead of looking the ids
-- up by primary key: in the 5,000,000-job soak (docs/benchmarks.md) the rate fell from
-- ~7,000 to 2,400-4,200 jobs/s for 30-60 s at a time, until another ANALYZE.
-- Indexed under a condition only the queries of expiry state (lease_expires_at < ...,
-- and IS NOT NULL where they take the earliest), it serves them as before and cannot be
-- picked for a lookup by id. Only running jobs have a lease expiry, as before.
DROP INDEX queue_jobs_leases;
CREATE INDEX queue_jobs_leases ON queue_jobs (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
