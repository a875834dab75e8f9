-- 002_conversation_api: the Conversation API resources. Columns hold what is queried or
-- constrained; the rest of a resource's settings lives in a JSON text column. Secrets
-- (channel credentials, webhook secrets, OAuth client secrets) are stored sealed
-- (XChaCha20-Poly1305 under a key derived from the data dir's secret).
CREATE TABLE apps (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL REFERENCES projects(id),
    display_name         TEXT NOT NULL,
    processing_mode      TEXT NOT NULL DEFAULT 'CONVERSATION',
    report_view          TEXT NOT NULL DEFAULT 'NONE',
    retention_type       TEXT NOT NULL DEFAULT 'MESSAGE_EXPIRE_POLICY',
    retention_ttl_days   INTEGER NOT NULL DEFAULT 180,
    dispatch_ttl_days    INTEGER NOT NULL DEFAULT 0,
    settings             TEXT NOT NULL DEFAULT '{}',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX apps_project ON apps(project_id, id);

-- One row per channel credential; position is the app's channel priority (0 first).
CREATE TABLE app_credentials (
    app_id             TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    position           INTEGER NOT NULL,
    channel            TEXT NOT NULL,
    ordinal            INTEGER NOT NULL DEFAULT 0,
    credential_key     TEXT NOT NULL,
    credential_sealed  TEXT NOT NULL,
    callback_secret_sealed TEXT,
    state_status       TEXT NOT NULL DEFAULT 'PENDING',
    state_description  TEXT NOT NULL DEFAULT '',
    channel_known_id   TEXT,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (app_id, channel, ordinal)
);

CREATE TABLE contacts (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL REFERENCES projects(id),
    display_name      TEXT NOT NULL DEFAULT '',
    email             TEXT NOT NULL DEFAULT '',
    external_id       TEXT NOT NULL DEFAULT '',
    language          TEXT NOT NULL DEFAULT 'UNSPECIFIED',
    metadata          TEXT NOT NULL DEFAULT '',
    channel_priority  TEXT NOT NULL DEFAULT '[]',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_activity     INTEGER NOT NULL
);
CREATE INDEX contacts_project ON contacts(project_id, id);
CREATE INDEX contacts_external ON contacts(project_id, external_id);

-- app_id is '' for channels whose identities are project-wide (SMS, WHATSAPP, TELEGRAM,
-- RCS) and the app's id for app-scoped ones (MESSENGER, INSTAGRAM, VIBERBM).
CREATE TABLE contact_identities (
    project_id  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    app_id      TEXT NOT NULL DEFAULT '',
    identity    TEXT NOT NULL,
    contact_id  TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (project_id, channel, app_id, identity)
);
CREATE INDEX contact_identities_contact ON contact_identities(contact_id, position);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id),
    app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    contact_id      TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    active          INTEGER NOT NULL DEFAULT 1,
    active_channel  TEXT NOT NULL DEFAULT '',
    metadata        TEXT NOT NULL DEFAULT '',
    metadata_json   TEXT,
    correlation_id  TEXT NOT NULL DEFAULT '',
    last_received   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX conversations_project ON conversations(project_id, id);
CREATE INDEX conversations_contact ON conversations(contact_id, id);
CREATE INDEX conversations_app ON conversations(app_id, id);
-- At most one active conversation per app and contact.
CREATE UNIQUE INDEX conversations_one_active ON conversations(app_id, contact_id) WHERE active = 1;

-- kind is 'app_message' (TO_CONTACT) or 'contact_message' (TO_APP); content is that JSON.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id),
    app_id           TEXT NOT NULL,
    conversation_id  TEXT REFERENCES conversations(id) ON DELETE CASCADE,
    contact_id       TEXT REFERENCES contacts(id) ON DELETE CASCADE,
    direction        TEXT NOT NULL,
    channel          TEXT NOT NULL DEFAULT '',
    identity         TEXT NOT NULL DEFAULT '',
    identity_app_id  TEXT NOT NULL DEFAULT '',
    accept_time      INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    content          TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '',
    injected         INTEGER NOT NULL DEFAULT 0,
    sender_id        TEXT NOT NULL DEFAULT '',
    processing_mode  TEXT NOT NULL DEFAULT 'CONVERSATION',
    status           TEXT NOT NULL DEFAULT '',
    status_time      INTEGER,
    status_reason    TEXT,
    correlation_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX messages_project ON messages(project_id, id);
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE INDEX messages_contact ON messages(contact_id, id);
CREATE INDEX messages_app ON messages(app_id, id);

CREATE TABLE webhooks (
    id                        TEXT PRIMARY KEY,
    project_id                TEXT NOT NULL REFERENCES projects(id),
    app_id                    TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    target                    TEXT NOT NULL,
    target_type               TEXT NOT NULL DEFAULT 'HTTP',
    secret_sealed             TEXT,
    triggers                  TEXT NOT NULL DEFAULT '[]',
    client_credentials_sealed TEXT,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);
CREATE INDEX webhooks_app ON webhooks(app_id, id);
CREATE INDEX webhooks_project ON webhooks(project_id, id);
