-- « Mes documents »: the PDF made for each version of a registration.
CREATE TABLE document (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    registration_id TEXT NOT NULL REFERENCES registration (id) ON DELETE CASCADE,
    registration_version INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmation')),
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    superseded_at TEXT
);
CREATE UNIQUE INDEX document_registration_version ON document (registration_id, registration_version, kind);
