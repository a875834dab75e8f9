-- 010_outbox_lanes: claiming outbox rows by lane, in time independent of the backlog. A
-- lane is what the dispatcher's in-flight limits are shared by: the app for message
-- deliveries (each message is its own target), the target (webhook, credential check) for
-- everything else. The dispatcher lists the lanes with a skip scan of this index and reads
-- each lane's oldest due rows from it (src/dispatch/dispatch.c); it replaces outbox_due,
-- which only served a query over the whole backlog.
DROP INDEX outbox_due;
CREATE INDEX outbox_lane
    ON outbox ((CASE WHEN kind = 'deliver' THEN app_id ELSE target_id END), due_at, id);
