-- 005_stream: the event stream the domains talk through (DESIGN.md: "the three domains
-- never read each other's tables"). Conversation API changes append one row per event in
-- the transaction that makes the change; Flows and Contact each read it in order from their
-- own cursor. seq follows commit order because SQLite has one writer at a time.
CREATE TABLE stream_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   TEXT NOT NULL,
    app_id       TEXT NOT NULL DEFAULT '',  -- '' for project-wide events
    kind         TEXT NOT NULL,             -- MESSAGE_INBOUND, CONTACT_UPDATE, ... or a domain's own
    payload      TEXT NOT NULL,             -- JSON object
    actor        TEXT NOT NULL DEFAULT '',  -- who caused it: 'key:ID', 'user:ID', '' = system
    created_at   INTEGER NOT NULL
);
CREATE INDEX stream_events_created ON stream_events(created_at);

CREATE TABLE stream_cursors (
    consumer     TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL
);
