-- Running a fleet (issue 12): queues an operator paused, and the workers alive now.

-- A queue with a row here is paused: no worker leases its jobs (store LEASE), while
-- enqueueing goes on and running jobs finish. A DLQ is a queue like any other: pausing
-- it stops handling while dead letters keep being captured. A row, not a flag in
-- memory, so that the pause holds across restarts and for every worker at once.
CREATE TABLE queue_pauses (
    queue      TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    paused_by  TEXT NOT NULL,
    paused_at  DOUBLE PRECISION NOT NULL
);

-- A resume wakes the workers listening for work on the queue, on commit, so that they
-- take it up at once rather than at their next poll.
CREATE FUNCTION queue_resume_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('deadletter_jobs', OLD.queue);
    RETURN NULL;
END;
$$;

CREATE TRIGGER queue_resume_notify AFTER DELETE ON queue_pauses
    FOR EACH ROW EXECUTE FUNCTION queue_resume_notify();

-- Each worker's presence, written at its start and on every heartbeat, deleted when
-- it stops. A worker killed without a word stays until readers, which count only
-- recent heartbeats, pass over it, and the next worker to start deletes it.
-- `queues` and `running` are JSON arrays (running: [{id, task, queue, started_at}]).
CREATE TABLE workers (
    name          TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    version       TEXT NOT NULL,
    queues        TEXT NOT NULL,
    concurrency   INTEGER NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    heartbeat_at  DOUBLE PRECISION NOT NULL,
    running       TEXT NOT NULL DEFAULT '[]'
);
