-- Each worker's finished attempts per second by queue over its last heartbeat
-- interval, as JSON {queue: [succeeded, failed]}: the queues page sums them over the
-- live workers into each queue's throughput, at no cost on the path of a job.
ALTER TABLE workers ADD COLUMN throughput TEXT NOT NULL DEFAULT '{}';
