-- The staff console's audit trail: who saw or changed which candidate's data, and when.
-- Append-only: a trail that can be edited proves nothing.
CREATE TABLE staff_audit (
    id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    staff TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX staff_audit_created ON staff_audit (created_at);
CREATE INDEX staff_audit_subject ON staff_audit (subject, created_at);

CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit
BEGIN
    SELECT RAISE(ABORT, 'the staff audit trail is append-only');
END;

CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
BEGIN
    SELECT RAISE(ABORT, 'the staff audit trail is append-only');
END;
