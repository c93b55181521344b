-- A VACUUM ends by cutting the empty pages off the end of a table, under an ACCESS
-- EXCLUSIVE lock that it waits for and then holds while it scans back. queue_jobs and
-- job_attempts are emptied by pruning and filled again all day, so those pages would be
-- taken again at once: in the soak (bench/soak.py, docs/benchmarks.md) each such cut
-- came with a dip of the workers' rate by a quarter to a half for 10-20 s.
ALTER TABLE queue_jobs SET (vacuum_truncate = false);
ALTER TABLE job_attempts SET (vacuum_truncate = false);
