-- A dead letter says whether it is poison (quarantined: its worker was lost on its last
-- attempt) as a boolean, `poison` in its payload (issue 9). Letters written before said
-- it only as the first word of their free-text reason: backfill them from it.
UPDATE queue_jobs
SET payload = jsonb_set(payload, '{poison}',
    to_jsonb(coalesce(left(payload ->> 'reason', 6) = 'poison', false)))
WHERE task = 'deadletter.dead_letter' AND payload -> 'poison' IS NULL;
