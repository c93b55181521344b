-- A dispatcher's claim on an outbox row it is sending (store/outbox.py), apart from the
-- row's due time: before this, a claim pushed next_attempt_at a minute on, so a row
-- being sent looked like one waiting on its backoff. Now next_attempt_at is only when
-- the row is due, claimed_until only whose send is under way and till when, and that
-- value is the claim's token: a dispatcher settles or gives back only a row it still
-- holds, never one another took over after its claim ran out.
ALTER TABLE user_notifications ADD COLUMN claimed_until REAL;
ALTER TABLE ops_alerts ADD COLUMN claimed_until REAL;
