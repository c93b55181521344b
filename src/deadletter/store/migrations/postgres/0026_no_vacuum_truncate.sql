-- A VACUUM ends by cutting the empty pages off the end of a table, under an ACCESS
-- EXCLUSIVE lock that it waits for and then holds while it scans back. queue_jobs and
-- job_attempts are emptied by pruning and filled again all day, so those pages would be
-- taken again at once: in the soak (bench/soak.py, docs/benchmarks.md) the two dips of
-- the workers' rate left after 0025, by about 30% for 10 s each, came around a cut.
ALTER TABLE queue_jobs SET (vacuum_truncate = false);
ALTER TABLE job_attempts SET (vacuum_truncate = false);
