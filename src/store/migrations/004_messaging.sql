-- 004_messaging: what the messaging pipeline needs beyond the resources. Provider ids of
-- sent messages (receipts name them), and provider ids of inbound messages already stored
-- (providers retry webhooks; a retry must not store the message twice).
CREATE TABLE message_refs (
    app_id       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    message_id   TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, channel, provider_id)
);
CREATE INDEX message_refs_message ON message_refs(message_id);

CREATE TABLE inbound_seen (
    app_id       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (app_id, channel, provider_id)
);
