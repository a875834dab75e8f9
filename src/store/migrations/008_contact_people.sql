-- 008_contact_people: the contact center's people side. Login sessions and invitations
-- (tokens stored only as BLAKE2b hashes), failed-login records for rate limiting, and the
-- GDPR audit log with the per-contact snapshot the audit consumer diffs against.
CREATE TABLE contact_sessions (
    token_hash    BLOB PRIMARY KEY,
    project_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,          -- absolute expiry (ms)
    ended_at      INTEGER                    -- logout, deactivation
);
CREATE INDEX contact_sessions_user ON contact_sessions(user_id);

CREATE TABLE contact_invitations (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    invited_by    TEXT NOT NULL,             -- actor: 'user:ID' or 'key:ID'
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    accepted_at   INTEGER,
    revoked_at    INTEGER,
    user_id       TEXT                       -- set on acceptance
);
CREATE INDEX contact_invitations_project ON contact_invitations(project_id, id);

-- One row per failed login; key is 'email:<lower-case address>' or 'ip:<address>'.
CREATE TABLE contact_login_failures (
    key           TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX contact_login_failures_key ON contact_login_failures(key, at);

-- The GDPR audit log: one row per changed personal-data attribute.
CREATE TABLE contact_audit (
    id            TEXT PRIMARY KEY,          -- ULID: time order
    project_id    TEXT NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,             -- 'user:ID', 'key:ID' or 'system'
    action        TEXT NOT NULL,             -- create, update, delete, merge, message, import, anonymize, ...
    subject       TEXT NOT NULL,             -- contact id
    attribute     TEXT NOT NULL,
    new_value     TEXT NOT NULL
);
CREATE INDEX contact_audit_project ON contact_audit(project_id, id);
CREATE INDEX contact_audit_subject ON contact_audit(project_id, subject, id);

-- The audit consumer's last known value of each contact attribute (to log only changes).
CREATE TABLE contact_audit_state (
    contact_id    TEXT NOT NULL,
    attribute     TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (contact_id, attribute)
);

-- Contacts a DPO anonymized: later events about them are logged as '[anonymized]'.
CREATE TABLE contact_anonymized (
    contact_id    TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL
);
