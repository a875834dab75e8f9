-- 007_flows: Flows (issue 5). One file for the whole flows module: core tables first,
-- then the lua and io helpers' tables (append below, each in its own block).

-- Every deployed flow set of a project, kept as the exact text that was deployed (export
-- returns it unchanged: unknown fields and x/y layout included). rev is a ULID.
CREATE TABLE flows_revisions (
    project_id   TEXT NOT NULL,
    rev          TEXT NOT NULL,
    flows        TEXT NOT NULL,             -- the flows.json array, as deployed
    actor        TEXT NOT NULL DEFAULT '',  -- 'key:ID' who deployed, '' = system
    note         TEXT NOT NULL DEFAULT '',  -- 'deploy', 'tab PUT', 'restore <rev>', ...
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, rev)
);

-- The live revision of each project (absent = nothing deployed).
CREATE TABLE flows_deployed (
    project_id   TEXT PRIMARY KEY,
    rev          TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Context: scope 'node' (owner = node id), 'flow' (owner = tab or subflow instance id),
-- 'global' (owner = ''). key is the top-level key; value its JSON text.
CREATE TABLE flows_context (
    project_id   TEXT NOT NULL,
    scope        TEXT NOT NULL,
    owner        TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, scope, owner, key)
);

-- lua: tables below

-- io: tables below
-- Conversations whose flow waits at a `sinch-send` node with "await response": the
-- contact's next inbound message on the app continues the flow from that node; expires_at
-- sends the saved msg to the node's failure output instead. One wait per contact and app
-- (a newer wait replaces the older, as Sinch's nextResponse does).
CREATE TABLE flows_waits (
    id              TEXT PRIMARY KEY,          -- ULID
    project_id      TEXT NOT NULL,
    app_id          TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL DEFAULT '',
    node_id         TEXT NOT NULL,             -- the waiting sinch-send node
    msg             TEXT NOT NULL,             -- the msg to continue with (JSON)
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX flows_waits_contact ON flows_waits(project_id, app_id, contact_id);
CREATE INDEX flows_waits_node ON flows_waits(project_id, node_id);

-- Conversation events accepted by the flows stream consumer and not yet handed to their
-- entry nodes: written in the transaction that advances the consumer's cursor, deleted
-- when the flow takes the message, so a crash between the two neither loses nor repeats it.
CREATE TABLE flows_inbox (
    id          TEXT PRIMARY KEY,               -- ULID (consumer order)
    project_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,                  -- 'inbound' | 'event' | 'resume'
    node_id     TEXT NOT NULL DEFAULT '',       -- 'resume': the waiting sinch-send node
    msg         TEXT NOT NULL,                  -- the msg for the entry node (JSON)
    created_at  INTEGER NOT NULL
);

-- Conversations a `contact-handover` node passed to the contact center: their inbound
-- messages start no flow until the conversation stops or a CONTACT_HANDBACK event names it.
CREATE TABLE flows_handovers (
    project_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (project_id, conversation_id)
);
