-- 003_outbox: durable jobs. A row is written in the same transaction as the change that
-- causes it (a contact created, a message accepted), so whatever was acknowledged is
-- delivered at least once, even across kill -9. Workers claim due rows with a lease.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,          -- ULID: creation order
    project_id   TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    kind         TEXT NOT NULL,             -- 'callback': POST payload to webhook target_id
    target_id    TEXT NOT NULL,
    payload      TEXT NOT NULL,             -- the exact body to send
    attempts     INTEGER NOT NULL DEFAULT 0,
    due_at       INTEGER NOT NULL,          -- ms; claimable when due_at <= now
    lease_until  INTEGER NOT NULL DEFAULT 0,-- ms; claimed by a worker until then
    expires_at   INTEGER NOT NULL,          -- ms; give up when a retry would fall after it
    last_error   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(due_at);
CREATE INDEX outbox_target ON outbox(target_id);
