-- Running a fleet (issue 12): queues an operator paused, and the workers alive now.

-- A queue with a row here is paused: no worker leases its jobs (store LEASE), while
-- enqueueing goes on and running jobs finish. A DLQ is a queue like any other: pausing
-- it stops handling while dead letters keep being captured. A row, not a flag in
-- memory, so that the pause holds across restarts and for every worker at once.
CREATE TABLE queue_pauses (
    queue      TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    paused_by  TEXT NOT NULL,
    paused_at  REAL NOT NULL
);

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
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL,
    running       TEXT NOT NULL DEFAULT '[]'
);
