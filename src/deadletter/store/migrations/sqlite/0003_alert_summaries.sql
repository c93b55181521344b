-- How many of an alert's occurrences its sent message reported: the rest, counted in
-- after it went out, are sent as a summary once its window is over.
ALTER TABLE ops_alerts ADD COLUMN reported INTEGER NOT NULL DEFAULT 0;
