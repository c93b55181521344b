-- When the running attempt's task began, NULL while the leased job still waits for a
-- slot (store/base.py `begin`). A lease that expires on a job that never began is given
-- back uncharged; only an attempt that began is charged when its worker is lost.
ALTER TABLE queue_jobs ADD COLUMN attempt_began_at DOUBLE PRECISION;
