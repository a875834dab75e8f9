-- 006_flows: Flows (issue 5). One file for the whole flows module: core tables first,
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
