-- Sync with the rectorat. A change and its outbox row are one transaction: these
-- triggers write the 'sync' outbox rows, so that no code path can forget one. What is
-- applied from the rectorat is written under a guard row, so that it is not pushed back.
ALTER TABLE account ADD COLUMN origin TEXT NOT NULL DEFAULT 'kiosk' CHECK (origin IN ('kiosk', 'rectorat'));
ALTER TABLE registration ADD COLUMN origin TEXT NOT NULL DEFAULT 'kiosk' CHECK (origin IN ('kiosk', 'rectorat'));

CREATE TABLE sync_guard (
    id INTEGER NOT NULL PRIMARY KEY
);

CREATE TABLE sync_state (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL
);

CREATE INDEX outbox_kind_pending ON outbox (kind, delivered_at, failed_at, created_at);

CREATE TRIGGER account_sync_insert AFTER INSERT ON account
WHEN NEW.origin = 'kiosk' AND NOT EXISTS (SELECT 1 FROM sync_guard)
BEGIN
    INSERT INTO outbox (id, version, created_at, updated_at, kind, payload, attempts, next_attempt_at)
    VALUES (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
        1, NEW.updated_at, NEW.updated_at, 'sync',
        json_object('entity', 'account', 'id', NEW.id, 'version', NEW.version),
        0, NEW.updated_at
    );
END;

CREATE TRIGGER account_sync_update AFTER UPDATE OF version ON account
WHEN NEW.version > OLD.version AND NOT EXISTS (SELECT 1 FROM sync_guard)
BEGIN
    INSERT INTO outbox (id, version, created_at, updated_at, kind, payload, attempts, next_attempt_at)
    VALUES (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
        1, NEW.updated_at, NEW.updated_at, 'sync',
        json_object('entity', 'account', 'id', NEW.id, 'version', NEW.version),
        0, NEW.updated_at
    );
END;

CREATE TRIGGER registration_sync_insert AFTER INSERT ON registration
WHEN NEW.origin = 'kiosk' AND NOT EXISTS (SELECT 1 FROM sync_guard)
BEGIN
    INSERT INTO outbox (id, version, created_at, updated_at, kind, payload, attempts, next_attempt_at)
    VALUES (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
        1, NEW.updated_at, NEW.updated_at, 'sync',
        json_object('entity', 'registration', 'id', NEW.id, 'version', NEW.version),
        0, NEW.updated_at
    );
END;

CREATE TRIGGER registration_sync_update AFTER UPDATE OF version ON registration
WHEN NEW.version > OLD.version AND NOT EXISTS (SELECT 1 FROM sync_guard)
BEGIN
    INSERT INTO outbox (id, version, created_at, updated_at, kind, payload, attempts, next_attempt_at)
    VALUES (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
        1, NEW.updated_at, NEW.updated_at, 'sync',
        json_object('entity', 'registration', 'id', NEW.id, 'version', NEW.version),
        0, NEW.updated_at
    );
END;

CREATE TRIGGER address_change_sync_insert AFTER INSERT ON address_change
WHEN 1 AND NOT EXISTS (SELECT 1 FROM sync_guard)
BEGIN
    INSERT INTO outbox (id, version, created_at, updated_at, kind, payload, attempts, next_attempt_at)
    VALUES (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
        1, NEW.updated_at, NEW.updated_at, 'sync',
        json_object('entity', 'address_change', 'id', NEW.id, 'version', NEW.version),
        0, NEW.updated_at
    );
END;
