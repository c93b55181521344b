-- A dead letter says whether it is poison (quarantined: its worker was lost on its last
-- attempt) as a boolean, `poison` in its payload (issue 9). Letters written before said
-- it only as the first word of their free-text reason: backfill them from it.
UPDATE queue_jobs
SET payload = json_set(payload, '$.poison',
    json(CASE WHEN substr(json_extract(payload, '$.reason'), 1, 6) = 'poison'
         THEN 'true' ELSE 'false' END))
WHERE task = 'deadletter.dead_letter' AND json_extract(payload, '$.poison') IS NULL;
