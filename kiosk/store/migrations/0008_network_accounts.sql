-- One-time codes reach the rectorat, so that a code, or the link of its mail, works at
-- every kiosk online. A code is worth sending once its mail has made it (its version
-- rises then), and again when it is tried or spent. The link's token is kept hashed.
ALTER TABLE one_time_code ADD COLUMN link_hash TEXT;

-- An account signed up here offline whose address the rectorat found taken by an account
-- made elsewhere: it cannot be kept, and its candidate is told so at the next login.
ALTER TABLE account ADD COLUMN taken_elsewhere_at TEXT;

CREATE TRIGGER one_time_code_sync_update AFTER UPDATE OF version ON one_time_code
WHEN NEW.version > OLD.version AND NOT EXISTS (SELECT 1 FROM sync_guard)
BEGIN
    INSERT INTO outbox (id, version, created_at, updated_at, kind, payload, attempts, next_attempt_at)
    VALUES (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
        1, NEW.updated_at, NEW.updated_at, 'sync',
        json_object('entity', 'code', 'id', NEW.id, 'version', NEW.version),
        0, NEW.updated_at
    );
END;
