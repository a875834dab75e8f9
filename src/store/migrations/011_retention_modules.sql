-- 011_retention_modules: retention of the contact center (src/contact/retention.c) and of
-- Flows (src/flows/retention.c), issue #7 items 3 and 4. The per-project contact-center
-- retention settings (no row = the defaults: anonymize after 90 days, delete after 365,
-- audit log kept 365), and the indexes the sweep steps need so that each batch reads only
-- what it changes. Anonymized contact-center conversations are marked by conversation_id
-- '[anonymized]' (the partial index holds only those still to anonymize).
CREATE TABLE contact_retention_settings (
    project_id            TEXT PRIMARY KEY REFERENCES projects(id),
    anonymize_after_days  INTEGER NOT NULL,
    delete_after_days     INTEGER NOT NULL,
    audit_keep_days       INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX contact_conversations_to_anonymize ON contact_conversations(project_id, closed_at)
    WHERE status = 'closed' AND conversation_id <> '[anonymized]';
CREATE INDEX contact_conversations_closed ON contact_conversations(project_id, closed_at)
    WHERE status = 'closed';
CREATE INDEX contact_audit_at ON contact_audit(project_id, at);
CREATE INDEX flows_waits_created ON flows_waits(created_at);
CREATE INDEX flows_inbox_created ON flows_inbox(created_at);
CREATE INDEX flows_handovers_created ON flows_handovers(created_at);
