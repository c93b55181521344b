-- Most jobs have no idempotency key, yet the column's UNIQUE constraint indexed every
-- job's NULL, and every lease and outcome (an update that moves the row) added an entry
-- for it again. The same uniqueness over the keys alone: a no-op job costs the server
-- 0.90x the CPU (docs/benchmarks.md, "The idempotency key's index without NULLs").
-- Enqueue's ON CONFLICT DO NOTHING names no constraint, so it takes this index as it
-- took the constraint's.
ALTER TABLE queue_jobs DROP CONSTRAINT queue_jobs_idempotency_key_key;
CREATE UNIQUE INDEX queue_jobs_idempotency_key ON queue_jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
