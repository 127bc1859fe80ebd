-- « Mes documents » holds more than the confirmation: the notice of an address change
-- reported after the close, and the documents the exam office publishes (a convocation,
-- a relevé de notes…). A notice names its address change, a published document the
-- rectorat's record (``source_id``); a published document is listed once its bytes have
-- arrived and been checked (``stored_at``). SQLite cannot widen a CHECK: the table is
-- made again, its rows kept.
CREATE TABLE document_next (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    registration_id TEXT NOT NULL REFERENCES registration (id) ON DELETE CASCADE,
    registration_version INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation', 'address_notice', 'published')),
    source_id TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    superseded_at TEXT,
    stored_at TEXT
);
INSERT INTO document_next (id, version, created_at, updated_at, registration_id,
    registration_version, kind, file_name, sha256, size, superseded_at, stored_at)
SELECT id, version, created_at, updated_at, registration_id, registration_version, kind,
    file_name, sha256, size, superseded_at, created_at
FROM document;
DROP TABLE document;
ALTER TABLE document_next RENAME TO document;
CREATE UNIQUE INDEX document_registration_version
    ON document (registration_id, registration_version, kind, source_id);

-- When the exam office applied an address change reported after the close.
ALTER TABLE address_change ADD COLUMN applied_at TEXT;
