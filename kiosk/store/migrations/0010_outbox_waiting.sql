-- The outbox keeps every row it has delivered. Its queries ask for the rows still waiting
-- (or refused), so its indexes hold only those: marking a row delivered takes it out of
-- one small index instead of moving it in two that hold every row, and the waiting sync
-- rows are read in order (an index on the kind alone is ordered by rowid within it).
DROP INDEX outbox_due;
DROP INDEX outbox_kind_pending;
CREATE INDEX outbox_waiting ON outbox (kind, failed_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_refused ON outbox (kind, failed_at) WHERE failed_at IS NOT NULL;
