-- The targets an outbox row has been delivered to (store/outbox.py): a JSON array of
-- their names as notify/deliver.py gives them (the URL with its credentials masked),
-- NULL for none. An alert goes to every alert target; before this, one target failing
-- had the whole row retried, so the targets that had taken it got it again on every
-- retry, probe and drain. Now a retry sends only to the configured targets not in it:
-- a target removed from the config since is owed nothing, one added is owed the row.
ALTER TABLE user_notifications ADD COLUMN delivered_to TEXT;
ALTER TABLE ops_alerts ADD COLUMN delivered_to TEXT;
