-- « M'inscrire »: the saved registration, the account's draft, and address changes.
CREATE TABLE registration (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('registered', 'withdrawn', 'set_aside')),
    saved_at TEXT NOT NULL,
    withdrawn_at TEXT,
    number TEXT,
    paper_status TEXT CHECK (paper_status IN ('received', 'complete', 'incomplete', 'validated')),
    missing_pieces TEXT
);
CREATE UNIQUE INDEX registration_account_session ON registration (account_id, session_id);

CREATE TABLE draft (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    "values" TEXT NOT NULL
);
CREATE UNIQUE INDEX draft_account_session ON draft (account_id, session_id);

CREATE TABLE address_change (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    registration_id TEXT NOT NULL REFERENCES registration (id) ON DELETE CASCADE,
    address TEXT NOT NULL
);
CREATE INDEX address_change_registration ON address_change (registration_id, created_at);
