/* audit.c: the GDPR audit log (audit.h): writing rows, searching them, and the "audit"
 * stream consumer that turns Conversation API events into rows. */
#include "contact/audit.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/ulid.h"
#include "convo/convo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int contact_audit_write(store_conn_t *c, const char *project_id, const char *actor,
                        const char *action, const char *subject, const char *attribute,
                        const char *new_value, err_t *e)
{
    char id[ULID_LEN + 1];
    ulid_new(id);
    return store_exec(c, e,
                      "INSERT INTO contact_audit (id, project_id, at, actor, action, subject, "
                      "attribute, new_value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                      "ssisssss", id, project_id, clock_now_ms(),
                      actor && *actor ? actor : "system", action, subject ? subject : "", attribute,
                      new_value ? new_value : "") < 0
               ? -1
               : 0;
}

json_t *contact_audit_search(store_conn_t *c, const char *project_id,
                             const contact_audit_query_t *q, err_t *e)
{
    convo_page_t page;
    if (convo_page_parse(q->page_size, q->page_token, 50, 1000, &page, e) < 0) return NULL;
    /* Newest first: the page token holds the last id seen, the next page is below it. */
    store_stmt_t *st = store_query(
        c, e,
        "SELECT id, at, actor, action, subject, attribute, new_value FROM contact_audit "
        "WHERE project_id = $1 AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR actor = $3) "
        "AND ($4 IS NULL OR attribute = $4) AND at >= $5 AND ($6 = 0 OR at < $6) "
        "AND ($7 = '' OR id < $7) ORDER BY id DESC LIMIT $8",
        "ssssiisi", project_id, q->subject, q->actor, q->attribute, q->from_ms, q->to_ms,
        page.after, page.size + 1);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(
            arr,
            json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:s}", "id", store_col_text(st, 0), "time",
                      convo_time_json(store_col_int(st, 1)), "actor", store_col_text(st, 2),
                      "action", store_col_text(st, 3), "subject", store_col_text(st, 4),
                      "attribute", store_col_text(st, 5), "new_value", store_col_text(st, 6)));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    json_t *out = convo_page_result(arr, "entries", &page, -1, "id");
    json_object_del(out, "total_size");
    return out;
}

/* ---- the consumer ---- */

static const char *const tracked[] = {"display_name", "email",    "external_id",
                                      "language",     "metadata", NULL};

/* "SMS:+4670...;MESSENGER@APP:123" in stored order. */
static char *identities_text(json_t *contact)
{
    buf_t b;
    buf_init(&b);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(contact, "channel_identities"), i, it)
    {
        const char *app = json_string_value(json_object_get(it, "app_id"));
        buf_printf(&b, "%s%s%s%s:%s", i ? ";" : "",
                   json_string_value(json_object_get(it, "channel")) ?: "", app && *app ? "@" : "",
                   app && *app ? app : "",
                   json_string_value(json_object_get(it, "identity")) ?: "");
    }
    return buf_steal(&b);
}

/* 1 when events about contact_id up to time `at` must not reveal values. */
static int anonymized_before(store_conn_t *c, const char *contact_id, int64_t at, err_t *e)
{
    store_stmt_t *st = store_query(c, e, "SELECT at FROM contact_anonymized WHERE contact_id = $1",
                                   "s", contact_id);
    int rc = st ? store_step(st, e) : -1;
    int hidden = rc == 1 && at <= store_col_int(st, 0);
    store_done(st);
    return rc < 0 ? -1 : hidden;
}

/* Compare one attribute with the snapshot; on change log it and update the snapshot. */
static int diff_one(store_conn_t *c, const stream_event_t *ev, const char *action,
                    const char *contact_id, const char *attr, const char *value, int hidden,
                    err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT value FROM contact_audit_state WHERE contact_id = $1 AND attribute = $2",
        "ss", contact_id, attr);
    int rc = st ? store_step(st, e) : -1;
    int same = rc == 1 ? strcmp(store_col_text(st, 0), value) == 0 : !*value;
    store_done(st);
    if (rc < 0) return -1;
    if (same) return 0;
    const char *shown = hidden ? CONTACT_AUDIT_ANONYMIZED : value;
    if (contact_audit_write(c, ev->project_id, ev->actor, action, contact_id, attr, shown, e) < 0)
        return -1;
    return store_exec(c, e,
                      "INSERT INTO contact_audit_state (contact_id, attribute, value) VALUES ($1, "
                      "$2, $3) ON CONFLICT (contact_id, attribute) DO UPDATE SET value = $3",
                      "sss", contact_id, attr, shown) < 0
               ? -1
               : 0;
}

static int audit_contact(store_conn_t *c, const stream_event_t *ev, const char *action,
                         json_t *contact, err_t *e)
{
    const char *id = json_string_value(json_object_get(contact, "id"));
    if (!id) return 0;
    int hidden = anonymized_before(c, id, ev->created_at, e);
    if (hidden < 0) return -1;
    for (int i = 0; tracked[i]; i++) {
        const char *v = json_string_value(json_object_get(contact, tracked[i]));
        if (strcmp(tracked[i], "language") == 0 && v && strcmp(v, "UNSPECIFIED") == 0) v = "";
        if (diff_one(c, ev, action, id, tracked[i], v ? v : "", hidden, e) < 0) return -1;
    }
    char *ids = identities_text(contact);
    int rc = diff_one(c, ev, action, id, "channel_identities", ids, hidden, e);
    free(ids);
    return rc;
}

static int audit_gone(store_conn_t *c, const stream_event_t *ev, const char *action,
                      const char *contact_id, err_t *e)
{
    if (!contact_id) return 0;
    if (contact_audit_write(c, ev->project_id, ev->actor, action, contact_id, "*",
                            CONTACT_AUDIT_DELETED, e) < 0)
        return -1;
    return store_exec(c, e, "DELETE FROM contact_audit_state WHERE contact_id = $1", "s",
                      contact_id) < 0
               ? -1
               : 0;
}

static const char *str_at(json_t *o, const char *k1, const char *k2)
{
    json_t *v = json_object_get(o, k1);
    return json_string_value(k2 ? json_object_get(v, k2) : v);
}

/* The kinds contact_audit_handle writes rows for; the consumer passes over the others. */
static const char *const audit_kinds[] = {"CONTACT_CREATE", "CONTACT_UPDATE",      "CONTACT_DELETE",
                                          "CONTACT_MERGE",  "MESSAGE_INBOUND",     "MESSAGE_SUBMIT",
                                          "MESSAGE_DELETE", "CONVERSATION_DELETE", NULL};

int contact_audit_handle(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    (void)ud;
    json_t *p = stream_event_payload(ev);
    const char *k = ev->kind;
    char v[96];
    if (strcmp(k, "CONTACT_CREATE") == 0)
        return audit_contact(
            c, ev, "create",
            json_object_get(json_object_get(p, "contact_create_notification"), "contact"), e);
    if (strcmp(k, "CONTACT_UPDATE") == 0)
        return audit_contact(
            c, ev, "update",
            json_object_get(json_object_get(p, "contact_update_notification"), "contact"), e);
    if (strcmp(k, "CONTACT_DELETE") == 0)
        return audit_gone(
            c, ev, "delete",
            str_at(json_object_get(p, "contact_delete_notification"), "contact", "id"), e);
    if (strcmp(k, "CONTACT_MERGE") == 0) {
        json_t *m = json_object_get(p, "contact_merge_notification");
        const char *dst = str_at(m, "preserved_contact", "id");
        const char *src = str_at(m, "deleted_contact", "id");
        if (audit_contact(c, ev, "merge", json_object_get(m, "preserved_contact"), e) < 0 ||
            audit_gone(c, ev, "merge", src, e) < 0)
            return -1;
        return src ? contact_audit_write(c, ev->project_id, ev->actor, "merge", src, "merged_into",
                                         dst ? dst : "", e)
                   : 0;
    }
    if (strcmp(k, "MESSAGE_INBOUND") == 0 || strcmp(k, "MESSAGE_SUBMIT") == 0) {
        int in = k[8] == 'I';
        json_t *m = json_object_get(p, in ? "message" : "message_submit_notification");
        const char *contact = str_at(m, "contact_id", NULL);
        const char *mid = str_at(m, in ? "id" : "message_id", NULL);
        if (!contact || !*contact || !mid) return 0;
        snprintf(v, sizeof v, "%s message %s", in ? "inbound" : "outbound", mid);
        return contact_audit_write(c, ev->project_id, ev->actor, "message", contact, "transcript",
                                   v, e);
    }
    if (strcmp(k, "MESSAGE_DELETE") == 0) {
        const char *contact = str_at(p, "contact_id", NULL), *mid = str_at(p, "message_id", NULL);
        if (!contact || !*contact || !mid) return 0;
        snprintf(v, sizeof v, "[deleted] message %s", mid);
        return contact_audit_write(c, ev->project_id, ev->actor, "delete", contact, "transcript", v,
                                   e);
    }
    if (strcmp(k, "CONVERSATION_DELETE") == 0) {
        json_t *cv =
            json_object_get(json_object_get(p, "conversation_delete_notification"), "conversation");
        const char *contact = str_at(cv, "contact_id", NULL), *cid = str_at(cv, "id", NULL);
        if (!contact || !cid) return 0;
        snprintf(v, sizeof v, "[deleted] conversation %s", cid);
        return contact_audit_write(c, ev->project_id, ev->actor, "delete", contact, "transcript", v,
                                   e);
    }
    return 0;
}

int contact_audit_redact(store_conn_t *c, const char *project_id, const char *contact_id,
                         const char *actor, err_t *e)
{
    int64_t now = clock_now_ms();
    if (store_exec(c, e,
                   "UPDATE contact_audit SET new_value = $3 WHERE project_id = $1 AND subject = "
                   "$2 AND attribute <> 'transcript' AND attribute <> 'merged_into' AND "
                   "new_value <> $4",
                   "ssss", project_id, contact_id, CONTACT_AUDIT_ANONYMIZED,
                   CONTACT_AUDIT_DELETED) < 0 ||
        store_exec(c, e, "DELETE FROM contact_audit_state WHERE contact_id = $1", "s", contact_id) <
            0 ||
        store_exec(c, e,
                   "INSERT INTO contact_anonymized (contact_id, project_id, at, actor) VALUES ($1, "
                   "$2, $3, $4) ON CONFLICT (contact_id) DO UPDATE SET at = $3, actor = $4",
                   "ssis", contact_id, project_id, now, actor) < 0)
        return -1;
    return 0;
}

/* ---- the consumer thread ---- */

static stream_consumer_t *audit_consumer;

int contact_audit_start(store_t *s, err_t *e)
{
    audit_consumer = stream_consumer_start(s, CONTACT_AUDIT_CONSUMER, audit_kinds,
                                           contact_audit_handle, NULL, 1000, e);
    return audit_consumer ? 0 : -1;
}

void contact_audit_stop(void)
{
    stream_consumer_stop(audit_consumer);
    audit_consumer = NULL;
}
