-- 006_lifecycle: data lifecycle (src/privacy/). Project settings (a Parley extension:
-- contact retention), and the indexes the retention sweeper needs so that each batch
-- reads only what it removes.
CREATE TABLE project_settings (
    project_id          TEXT PRIMARY KEY REFERENCES projects(id),
    contact_retention   TEXT NOT NULL DEFAULT 'PERSIST_RETENTION_POLICY',
    contact_ttl_days    INTEGER NOT NULL DEFAULT 0,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX messages_app_time ON messages(app_id, accept_time);
CREATE INDEX inbound_seen_message ON inbound_seen(message_id);
CREATE INDEX projects_deleted ON projects(deleted_at);
