-- How many times a worker was lost holding the job with no begin of its attempt written:
-- a slot writes the begin in the background (worker/begins.py), so a worker that dies
-- in between, perhaps killed by this very job, leaves it uncharged. Once that has
-- happened, every later attempt's begin is written before the task starts, so that a
-- job that kills its worker is charged and ends as poison, one run later at most.
ALTER TABLE queue_jobs ADD COLUMN worker_losses INTEGER NOT NULL DEFAULT 0;
