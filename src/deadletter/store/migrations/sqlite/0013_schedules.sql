-- Periodic jobs (store/schedules.py): the last tick of each schedule that a scheduler
-- enqueued or skipped, in whole epoch seconds (cron has no finer unit), so that the
-- compare-and-set that advances it compares exact integers. A tick is enqueued in the
-- transaction that advances last_tick past it: two schedulers cannot both enqueue it.
CREATE TABLE schedules (
    name       TEXT PRIMARY KEY,
    last_tick  INTEGER NOT NULL
);
