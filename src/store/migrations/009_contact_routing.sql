-- 009_contact_routing: the contact center's routing (src/contact, routing half): apps linked
-- as Contact channels, skills, agents' settings and skills, categories and their rules, the
-- contact-center conversations (queue and assignments), internal notes, and the per-user
-- event log that the real-time stream (SSE) resumes from. Agents are users (table users).
CREATE TABLE contact_channels (
    project_id   TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, app_id)
);

-- Per-project overrides of contact.* settings (NULL = the server's setting).
CREATE TABLE contact_settings (
    project_id      TEXT PRIMARY KEY,
    offline_grace_s INTEGER,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE contact_skills (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE contact_agents (
    user_id       TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    capacity      INTEGER NOT NULL DEFAULT 5,
    auto_allocate INTEGER NOT NULL DEFAULT 1,
    presence      TEXT NOT NULL DEFAULT 'offline',  -- online | away | offline
    presence_at   INTEGER NOT NULL DEFAULT 0,       -- when presence last changed
    idle_since    INTEGER NOT NULL DEFAULT 0,       -- last conversation ended or came online
    updated_at    INTEGER NOT NULL
);
CREATE INDEX contact_agents_project ON contact_agents(project_id);

CREATE TABLE contact_agent_skills (
    user_id      TEXT NOT NULL,
    skill_id     TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, skill_id)
);
CREATE INDEX contact_agent_skills_skill ON contact_agent_skills(skill_id);

CREATE TABLE contact_categories (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    target_answer_s INTEGER NOT NULL DEFAULT 60,
    skills          TEXT NOT NULL DEFAULT '[]',   -- JSON array of skill ids
    is_default      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE contact_rules (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    position       INTEGER NOT NULL,
    category_id    TEXT NOT NULL,
    app_id         TEXT,          -- NULL: any
    channel        TEXT,
    keywords       TEXT,          -- JSON array of words, any of which matches
    metadata_key   TEXT,
    metadata_value TEXT,          -- POSIX extended regex
    created_at     INTEGER NOT NULL
);
CREATE INDEX contact_rules_project ON contact_rules(project_id, position);

-- One row per contact-center conversation: waiting (in the queue), active (with agent_id)
-- or closed. queued_at is the waiting position; it is kept across assignments so that a
-- conversation requeued after its agent's grace period goes back where it was.
CREATE TABLE contact_conversations (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    conversation_id   TEXT NOT NULL,   -- the Conversation API conversation
    contact_id        TEXT NOT NULL DEFAULT '',
    app_id            TEXT NOT NULL,
    channel           TEXT NOT NULL DEFAULT '',
    category_id       TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    source            TEXT NOT NULL,   -- inbound | handover
    status            TEXT NOT NULL,   -- waiting | active | closed
    agent_id          TEXT,
    queued_at         INTEGER NOT NULL,
    assigned_at       INTEGER,
    first_assigned_at INTEGER,
    closed_at         INTEGER,
    closed_by         TEXT,
    wrap_up           TEXT,
    created_at        INTEGER NOT NULL
);
CREATE INDEX contact_conversations_status ON contact_conversations(project_id, status);
CREATE INDEX contact_conversations_convo ON contact_conversations(conversation_id);
CREATE INDEX contact_conversations_agent ON contact_conversations(agent_id, status);

CREATE TABLE contact_notes (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,   -- contact_conversations.id
    author           TEXT NOT NULL,   -- user:ID | key:ID
    text             TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX contact_notes_conversation ON contact_notes(conversation_id);

-- The real-time events, per user ('*' = everyone in the project). id is the SSE event id:
-- it grows in commit order, so Last-Event-ID resumes exactly. Trimmed by age.
CREATE TABLE contact_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX contact_events_user ON contact_events(project_id, user_id, id);
CREATE INDEX contact_events_created ON contact_events(created_at);
