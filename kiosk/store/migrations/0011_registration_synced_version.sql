-- The version of each registration that this kiosk last knew the rectorat to hold. It goes
-- with the kiosk's next change as its « base »: a change made here from a version other
-- than the rectorat's (the exam office corrected the file meanwhile) is then kept aside
-- there for the exam office, never written over the correction. 0: the rectorat has none
-- (made here, not taken yet). -1: not known (a change waited, or was refused, when this
-- column came): sent without a base, as before, until the next pull says.
ALTER TABLE registration ADD COLUMN synced_version INTEGER NOT NULL DEFAULT 0;
UPDATE registration SET synced_version = CASE
    WHEN EXISTS (
        SELECT 1 FROM outbox o
        WHERE o.kind = 'sync' AND o.delivered_at IS NULL
          AND json_extract(o.payload, '$.entity') = 'registration'
          AND json_extract(o.payload, '$.id') = registration.id
    ) THEN -1
    ELSE version
END;
-- A copy that an earlier kiosk let drift from the rectorat's (a change answered « stale »
-- while the exam office corrected the file) is healed by the next pull, which reads every
-- record this kiosk holds again and takes the rectorat's where nothing of its own waits.
UPDATE sync_state SET value = '0' WHERE name = 'cursor';
