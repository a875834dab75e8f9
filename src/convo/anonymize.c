/* anonymize.c: the Conversation API side of the GDPR tools (anonymize.h): find every
 * record holding a value, and replace one contact's personal data with placeholders. */
#include "convo/anonymize.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/utf8.h"
#include "convo/contacts.h"
#include "convo/events.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIND_MAX 500

/* "%value%" lower-cased with LIKE's wildcards escaped by '\'. */
static char *like_pattern(const char *v)
{
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "%");
    for (const char *p = v; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\') buf_puts(&b, "\\");
        char ch = (char)tolower((unsigned char)*p);
        buf_append(&b, &ch, 1);
    }
    buf_puts(&b, "%");
    return buf_steal(&b);
}

// clang-format off
#define DIGITS(x) "replace(replace(replace(replace(replace(replace(" x ", '+', ''), ' ', ''), " \
                  "'-', ''), '(', ''), ')', ''), '.', '')"
/* col holds one of the patterns $2..$4 (case-insensitively). */
#define HOLDS(col) "(lower(" col ") LIKE $2 ESCAPE '\\' OR lower(" col ") LIKE $3 ESCAPE '\\' " \
                   "OR lower(" col ") LIKE $4 ESCAPE '\\')"
#define IDENT_MATCH(col) "(" col " = $5 OR ($6 <> '' AND " DIGITS(col) " = $6) OR " HOLDS(col) ")"
#define CONTACT_MATCH                                                                        \
    "(" HOLDS("c.display_name") " OR " HOLDS("c.email") " OR " HOLDS("c.external_id")         \
    " OR " HOLDS("c.metadata") " OR EXISTS (SELECT 1 FROM contact_identities i "              \
    "WHERE i.contact_id = c.id AND " IDENT_MATCH("i.identity") "))"

static const char *const find_sql[] = {
    "SELECT c.id, c.display_name, c.email FROM contacts c WHERE c.project_id = $1 AND "
    CONTACT_MATCH " ORDER BY c.id LIMIT 501",
    "SELECT v.id, v.app_id, v.contact_id FROM conversations v WHERE v.project_id = $1 AND ("
    HOLDS("v.metadata") " OR " HOLDS("coalesce(v.metadata_json, '')") " OR v.contact_id IN "
    "(SELECT c.id FROM contacts c WHERE c.project_id = $1 AND " CONTACT_MATCH ")) "
    "ORDER BY v.id LIMIT 501",
    "SELECT m.id, coalesce(m.conversation_id, ''), coalesce(m.contact_id, ''), m.direction, "
    "m.channel FROM messages m WHERE m.project_id = $1 AND (" HOLDS("m.content") " OR "
    HOLDS("m.metadata") " OR " IDENT_MATCH("m.identity") ") ORDER BY m.id LIMIT 501",
};
// clang-format on

static int identities_of(const convo_ctx_t *cx, const char *id, json_t *out, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT channel, identity FROM contact_identities WHERE "
                                   "contact_id = $1 ORDER BY position",
                                   "s", id);
    if (!st) return -1;
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(out, json_pack("{s:s, s:s}", "channel", store_col_text(st, 0),
                                             "identity", store_col_text(st, 1)));
    store_done(st);
    return rc;
}

json_t *convo_person_find(const convo_ctx_t *cx, convo_find_kind_t kind, const char *value,
                          err_t *e)
{
    char digits[64] = "";
    size_t nd = 0;
    if (kind == CONVO_FIND_PHONE) {
        for (const char *p = value; *p && nd + 1 < sizeof digits; p++)
            if (isdigit((unsigned char)*p))
                digits[nd++] = *p;
            else if (!strchr("+()-. ", *p)) {
                err_set(e, ERR_INVALID_ARGUMENT,
                        "phone \"%.64s\" is not a phone number: digits, + ( ) - . and spaces only",
                        value);
                return NULL;
            }
        digits[nd] = '\0';
        if (nd < 5) {
            err_set(e, ERR_INVALID_ARGUMENT, "phone must hold at least 5 digits, got %zu", nd);
            return NULL;
        }
    } else if (utf8_len(value) < 3) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "search value must be at least 3 characters (a shorter one matches too much)");
        return NULL;
    }
    char *pat[3];
    pat[0] = like_pattern(value);
    pat[1] = like_pattern(nd ? digits : value);
    char plus[66];
    snprintf(plus, sizeof plus, "+%s", digits);
    pat[2] = like_pattern(nd ? plus : value);
    json_t *out = json_object(), *lists[3] = {json_array(), json_array(), json_array()};
    static const char *const keys[] = {"contacts", "conversations", "messages"};
    int truncated = 0, rc = 0;
    for (int q = 0; q < 3 && rc >= 0; q++) {
        store_stmt_t *st = store_query(cx->conn, e, find_sql[q], "ssssss", cx->project_id, pat[0],
                                       pat[1], pat[2], value, digits);
        if (!st) {
            rc = -1;
            break;
        }
        while ((rc = store_step(st, e)) == 1) {
            if (json_array_size(lists[q]) == FIND_MAX) {
                truncated = 1;
                continue;
            }
            json_t *o;
            if (q == 0)
                o = json_pack("{s:s, s:s, s:s, s:[]}", "id", store_col_text(st, 0), "display_name",
                              store_col_text(st, 1), "email", store_col_text(st, 2),
                              "channel_identities");
            else if (q == 1)
                o = json_pack("{s:s, s:s, s:s}", "id", store_col_text(st, 0), "app_id",
                              store_col_text(st, 1), "contact_id", store_col_text(st, 2));
            else
                o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", store_col_text(st, 0),
                              "conversation_id", store_col_text(st, 1), "contact_id",
                              store_col_text(st, 2), "direction", store_col_text(st, 3), "channel",
                              store_col_text(st, 4));
            json_array_append_new(lists[q], o);
        }
        store_done(st);
    }
    size_t i;
    json_t *c;
    json_array_foreach(lists[0], i, c) if (rc >= 0) rc =
        identities_of(cx, json_string_value(json_object_get(c, "id")),
                      json_object_get(c, "channel_identities"), e);
    for (int q = 0; q < 3; q++)
        json_object_set_new(out, keys[q], lists[q]);
    json_object_set_new(out, "truncated", json_boolean(truncated));
    for (int k = 0; k < 3; k++)
        free(pat[k]);
    if (rc < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- anonymize ---- */

static const char *const message_keys[] = {"contact_message", "app_message", "submitted_message",
                                           NULL};

static json_t *placeholder_message(void)
{
    return json_pack("{s:{s:s}}", "text_message", "text", CONVO_ANONYMIZED);
}

/* Replace, in v, every string containing one of vals and (when bodies) every message
 * body. Returns 1 when something changed. *repl receives a replacement for v itself. */
static int scrub(json_t *v, json_t *vals, int bodies, json_t **repl)
{
    *repl = NULL;
    int changed = 0;
    if (json_is_string(v)) {
        size_t i;
        json_t *s;
        json_array_foreach(vals, i, s)
        {
            if (strstr(json_string_value(v), json_string_value(s))) {
                *repl = json_string(CONVO_ANONYMIZED);
                return 1;
            }
        }
        return 0;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *child, *r;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, child)
        {
            int body = 0;
            for (int j = 0; bodies && message_keys[j]; j++)
                body |= strcmp(k, message_keys[j]) == 0 && json_is_object(child);
            if (body) {
                json_object_set_new(v, k, placeholder_message());
                changed = 1;
            } else if (scrub(child, vals, bodies, &r)) {
                changed = 1;
                if (r) json_object_set_new(v, k, r);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child, *r;
        json_array_foreach(v, i, child) if (scrub(child, vals, bodies, &r))
        {
            changed = 1;
            if (r) json_array_set_new(v, i, r);
        }
    }
    return changed;
}

/* Rewrite payloads (JSON text) of `table` rows in the project mentioning the contact id
 * or one of vals. Returns rows changed or -1. */
static int64_t scrub_table(const convo_ctx_t *cx, const char *select_sql, const char *update_sql,
                           const char *contact_id, json_t *vals, err_t *e)
{
    json_t *needles = json_array();
    json_array_append_new(needles, json_string(contact_id));
    json_array_extend(needles, vals);
    int64_t changed = 0;
    size_t i;
    json_t *needle;
    json_array_foreach(needles, i, needle)
    {
        char *pat = like_pattern(json_string_value(needle));
        store_stmt_t *st = store_query(cx->conn, e, select_sql, "ss", cx->project_id, pat);
        free(pat);
        if (!st) goto fail;
        json_t *rows = json_array();
        int rc;
        while ((rc = store_step(st, e)) == 1)
            json_array_append_new(rows,
                                  json_pack("[s,s]", store_col_text(st, 0), store_col_text(st, 1)));
        store_done(st);
        size_t r;
        json_t *row;
        json_array_foreach(rows, r, row)
        {
            if (rc < 0) break;
            const char *text = json_string_value(json_array_get(row, 1));
            json_t *p = json_loads(text, 0, NULL), *repl;
            if (!p) continue;
            int bodies = strstr(text, contact_id) != NULL;
            if (scrub(p, vals, bodies, &repl)) {
                char *out = json_dumps(repl ? repl : p, JSON_COMPACT);
                if (store_exec(cx->conn, e, update_sql, "ss",
                               json_string_value(json_array_get(row, 0)), out) < 0)
                    rc = -1;
                else
                    changed++;
                free(out);
                json_decref(repl);
            }
            json_decref(p);
        }
        json_decref(rows);
        if (rc < 0) goto fail;
    }
    json_decref(needles);
    return changed;
fail:
    json_decref(needles);
    return -1;
}

static void add_val(json_t *vals, const char *v)
{
    if (v && utf8_len(v) >= 3 && strcmp(v, CONVO_ANONYMIZED) != 0)
        json_array_append_new(vals, json_string(v));
}

json_t *convo_contact_anonymize(const convo_ctx_t *cx, const char *contact_id, err_t *e)
{
    char id[ULID_LEN + 1];
    if (convo_norm_id(contact_id, "contact_id", id, e) < 0) return NULL;
    if (store_begin(cx->conn, e) < 0) return NULL;
    json_t *vals = json_array(), *result = NULL, *note = NULL;
    json_t *before = convo_contact_get(cx, id, e);
    if (!before) goto fail;
    static const char *const fields[] = {"display_name", "email", "external_id", "metadata", NULL};
    for (int i = 0; fields[i]; i++)
        add_val(vals, json_string_value(json_object_get(before, fields[i])));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(before, "channel_identities"), i, it)
        add_val(vals, json_string_value(json_object_get(it, "identity")));
    json_decref(before);
    int64_t now = clock_now_ms(), n_ids, n_conv, n_msg, n_ev, n_out;
    char anon_ident[64];
    snprintf(anon_ident, sizeof anon_ident, "anonymized-%s", id);
    /* Messages to or from any of the person's identities, even without a contact link. */
    int64_t n_extra = 0;
    json_array_foreach(vals, i, it)
    {
        int64_t n =
            store_exec(cx->conn, e,
                       "UPDATE messages SET content = $3, metadata = '', identity = $4 "
                       "WHERE project_id = $1 AND identity = $2",
                       "ssss", cx->project_id, json_string_value(it),
                       "{\"text_message\":{\"text\":\"" CONVO_ANONYMIZED "\"}}", anon_ident);
        if (n < 0) goto fail;
        n_extra += n;
    }
    if (store_exec(cx->conn, e,
                   "UPDATE contacts SET display_name = $2, email = '', external_id = '', "
                   "metadata = '', updated_at = $3 WHERE id = $1",
                   "ssi", id, CONVO_ANONYMIZED, now) < 0 ||
        (n_ids = store_exec(cx->conn, e,
                            "UPDATE contact_identities SET identity = 'anonymized-' || "
                            "contact_id || '-' || position WHERE contact_id = $1",
                            "s", id)) < 0 ||
        (n_conv = store_exec(cx->conn, e,
                             "UPDATE conversations SET metadata = '', metadata_json = NULL WHERE "
                             "contact_id = $1",
                             "s", id)) < 0 ||
        (n_msg = store_exec(cx->conn, e,
                            "UPDATE messages SET content = $2, metadata = '', identity = $3 "
                            "WHERE contact_id = $1",
                            "sss", id, "{\"text_message\":{\"text\":\"" CONVO_ANONYMIZED "\"}}",
                            anon_ident)) < 0)
        goto fail;
    /* Copies of the values in the event stream and in callbacks not yet delivered. */
    if ((n_ev = scrub_table(cx,
                            "SELECT CAST(seq AS TEXT), payload FROM stream_events WHERE "
                            "project_id = $1 AND lower(payload) LIKE $2 ESCAPE '\\'",
                            "UPDATE stream_events SET payload = $2 WHERE seq = CAST($1 AS "
                            "INTEGER)",
                            id, vals, e)) < 0 ||
        (n_out = scrub_table(cx,
                             "SELECT id, payload FROM outbox WHERE project_id = $1 AND "
                             "lower(payload) LIKE $2 ESCAPE '\\'",
                             "UPDATE outbox SET payload = $2 WHERE id = $1", id, vals, e)) < 0)
        goto fail;
    json_t *after = convo_contact_get(cx, id, e);
    if (!after) goto fail;
    note = json_pack("{s:o}", "contact", after);
    if (convo_event_emit_project(cx, "CONTACT_UPDATE", "contact_update_notification", note, e) <
            0 ||
        store_commit(cx->conn, e) < 0)
        goto fail;
    result = json_pack("{s:s, s:I, s:I, s:I, s:I}", "contact_id", id, "identities",
                       (json_int_t)n_ids, "conversations", (json_int_t)n_conv, "messages",
                       (json_int_t)n_msg + (json_int_t)n_extra, "events",
                       (json_int_t)n_ev + (json_int_t)n_out);
    json_decref(note);
    json_decref(vals);
    return result;
fail:
    store_rollback(cx->conn);
    json_decref(note);
    json_decref(vals);
    return NULL;
}
