/* conversations.c: the Conversation API's conversations (see conversations.h). The one
 * rule that spans rows, at most one active conversation per app and contact, is checked
 * inside the write transaction and backed by the unique partial index
 * conversations_one_active; a lost race on that index maps to the same error. */
#include "convo/conversations.h"
#include "convo/events.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/sec.h"
#include "convo/messages.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_COLS                                                                                  \
    "id, app_id, contact_id, active, active_channel, last_received, metadata, metadata_json, "     \
    "correlation_id"

const char *const convo_conversation_mask_paths[] = {"metadata", "metadata_json", "active_channel",
                                                     "correlation_id", NULL};

static const char *text_or(store_stmt_t *st, int col, const char *def)
{
    const char *s = store_col_text(st, col);
    return s ? s : def;
}

static const char *given(const char *s)
{
    return (s && *s) ? s : NULL;
}

/* Conversation from a row of CONV_COLS. */
static json_t *conversation_json(store_stmt_t *st)
{
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:b}", "id", text_or(st, 0, ""), "app_id", text_or(st, 1, ""),
                  "contact_id", text_or(st, 2, ""), "active", (int)store_col_int(st, 3));
    const char *ch = text_or(st, 4, "");
    if (*ch) json_object_set_new(c, "active_channel", json_string(ch));
    json_object_set_new(c, "last_received", convo_time_json(store_col_int(st, 5)));
    json_object_set_new(c, "metadata", json_string(text_or(st, 6, "")));
    if (!store_col_is_null(st, 7)) {
        json_t *mj = json_loads(text_or(st, 7, "{}"), JSON_DECODE_ANY, NULL);
        if (mj) json_object_set_new(c, "metadata_json", mj);
    }
    json_object_set_new(c, "correlation_id", json_string(text_or(st, 8, "")));
    return c;
}

/* Optional active_channel: 0 absent, 1 with *out the channel name ("" for
 * CHANNEL_UNSPECIFIED or ""), -1 error. */
static int active_channel_field(json_t *body, const char **out, err_t *e)
{
    const char *s = NULL;
    int got = jsonx_str(body, "active_channel", "active_channel", &s, e);
    if (got <= 0) return got;
    if (!*s || strcmp(s, "CHANNEL_UNSPECIFIED") == 0) {
        *out = "";
        return 1;
    }
    int ch = convo_channel_parse(s, "active_channel", e);
    if (ch < 0) return -1;
    *out = convo_channel_names[ch];
    return 1;
}

/* 1 if a row of `sql` (one text parameter + project) exists, 0 if not, -1 on error. */
/* The active conversation of app and contact into id_out: 1 found, 0 none, -1 error. */
static int find_active(const convo_ctx_t *cx, const char *app_id, const char *contact_id,
                       char id_out[ULID_LEN + 1], char channel_out[32], err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT id, active_channel FROM conversations WHERE "
                                   "project_id = $1 AND app_id = $2 AND contact_id = $3 AND "
                                   "active = 1",
                                   "sss", cx->project_id, app_id, contact_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        snprintf(id_out, ULID_LEN + 1, "%s", text_or(st, 0, ""));
        if (channel_out) snprintf(channel_out, 32, "%s", text_or(st, 1, ""));
    }
    store_done(st);
    return rc;
}

static int already_active(const char *app_id, const char *contact_id, const char *existing,
                          err_t *e)
{
    return err_set(e, ERR_FAILED_PRECONDITION,
                   "contact %s already has an active conversation %s with app %s; stop it "
                   "first, or create this one with active=false",
                   contact_id, existing, app_id);
}

static int64_t insert_conversation(const convo_ctx_t *cx, const char *id, const char *app_id,
                                   const char *contact_id, int active, const char *channel,
                                   const char *metadata, const char *metadata_json,
                                   const char *correlation_id, err_t *e)
{
    return store_exec(cx->conn, e,
                      "INSERT INTO conversations (id, project_id, app_id, contact_id, active, "
                      "active_channel, metadata, metadata_json, correlation_id, last_received, "
                      "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, "
                      "$10, $10)",
                      "ssssdssssi", id, cx->project_id, app_id, contact_id, active, channel,
                      metadata, metadata_json, correlation_id, clock_now_ms());
}

/* Inside the caller's transaction: the conversation as it now is, queued to its app's
 * webhooks under trigger. Returns it (new reference) or NULL. */
static json_t *conversation_notify(const convo_ctx_t *cx, const char *id, const char *trigger,
                                   const char *key, err_t *e)
{
    json_t *c = convo_conversation_get(cx, id, e);
    if (!c) return NULL;
    json_t *note = json_pack("{s:O}", "conversation", c);
    int rc = convo_event_emit(cx, json_string_value(json_object_get(c, "app_id")), trigger, key,
                              note, e);
    json_decref(note);
    if (rc < 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

json_t *convo_conversation_create(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    const char *app_id = NULL, *contact_id = NULL, *metadata = "", *corr = "", *channel = "";
    int active = 1;
    json_t *mj = NULL;
    if (jsonx_require(jsonx_str(body, "app_id", "app_id", &app_id, e), "app_id", e) < 0 ||
        convo_check_id(app_id, "app_id", e) < 0 ||
        jsonx_require(jsonx_str(body, "contact_id", "contact_id", &contact_id, e), "contact_id",
                      e) < 0 ||
        convo_check_id(contact_id, "contact_id", e) < 0 ||
        jsonx_bool(body, "active", "active", &active, e) < 0 ||
        active_channel_field(body, &channel, e) < 0 ||
        convo_str_field(body, "metadata", "metadata", 1024, &metadata, e) < 0 ||
        jsonx_obj(body, "metadata_json", "metadata_json", &mj, e) < 0 ||
        convo_str_field(body, "correlation_id", "correlation_id", 128, &corr, e) < 0)
        return NULL;
    char *mj_text = mj ? jsonx_dump(mj) : NULL;
    char id[ULID_LEN + 1], existing[ULID_LEN + 1];
    ulid_new(id);
    int rc;
    if (store_begin(cx->conn, e) < 0) goto fail;
    if (convo_require(cx, CONVO_KIND_APP, app_id, e) < 0 ||
        convo_require(cx, CONVO_KIND_CONTACT, contact_id, e) < 0)
        goto rollback;
    if (active) {
        rc = find_active(cx, app_id, contact_id, existing, NULL, e);
        if (rc == 1) already_active(app_id, contact_id, existing, e);
        if (rc != 0) goto rollback;
    }
    if (insert_conversation(cx, id, app_id, contact_id, active, channel, metadata, mj_text, corr,
                            e) < 0) {
        if (e->code == ERR_ALREADY_EXISTS &&
            find_active(cx, app_id, contact_id, existing, NULL, e) == 1)
            already_active(app_id, contact_id, existing, e);
        goto rollback;
    }
    json_t *conv =
        conversation_notify(cx, id, "CONVERSATION_START", "conversation_start_notification", e);
    if (!conv) goto rollback;
    if (store_commit(cx->conn, e) < 0) {
        json_decref(conv);
        goto fail;
    }
    free(mj_text);
    return conv;
rollback:
    store_rollback(cx->conn);
fail:
    free(mj_text);
    return NULL;
}

json_t *convo_conversation_get(const convo_ctx_t *cx, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT " CONV_COLS " FROM conversations WHERE id = $1 AND project_id = $2",
        "ss", id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *c = rc == 1 ? conversation_json(st) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "conversation %s not found", id);
    return c;
}

/* A "true"/"false" query flag: 0/1, or -1 with e filled. Absent = 0. */
static int query_bool(const char *v, const char *name, err_t *e)
{
    if (!given(v) || strcmp(v, "false") == 0) return 0;
    if (strcmp(v, "true") == 0) return 1;
    return err_set(e, ERR_INVALID_ARGUMENT, "%s must be true or false, got \"%.40s\"", name, v);
}

json_t *convo_conversation_list(const convo_ctx_t *cx, const convo_conversation_query_t *q,
                                err_t *e)
{
    const char *app = given(q->app_id), *contact = given(q->contact_id), *channel = NULL;
    convo_page_t page;
    if ((app && convo_check_id(app, "app_id", e) < 0) ||
        (contact && convo_check_id(contact, "contact_id", e) < 0))
        return NULL;
    int only_active = query_bool(q->only_active, "only_active", e);
    if (only_active < 0) return NULL;
    if (given(q->active_channel) && strcmp(q->active_channel, "CHANNEL_UNSPECIFIED") != 0) {
        int ch = convo_channel_parse(q->active_channel, "active_channel", e);
        if (ch < 0) return NULL;
        channel = convo_channel_names[ch];
    }
    if (convo_page_parse(q->page_size, q->page_token, 10, 1000, &page, e) < 0) return NULL;
#define CONV_WHERE                                                                                 \
    " FROM conversations WHERE project_id = $1 AND ($2 IS NULL OR app_id = $2) AND "               \
    "($3 IS NULL OR contact_id = $3) AND ($4 = 0 OR active = 1) AND "                              \
    "($5 IS NULL OR active_channel = $5)"
    int64_t total = 0;
    store_stmt_t *st = store_query(cx->conn, e, "SELECT COUNT(*)" CONV_WHERE, "sssds",
                                   cx->project_id, app, contact, only_active, channel);
    if (!st) return NULL;
    int rc = store_step(st, e);
    if (rc == 1) total = store_col_int(st, 0);
    store_done(st);
    if (rc < 0) return NULL;
    st = store_query(cx->conn, e,
                     "SELECT " CONV_COLS CONV_WHERE " AND id > $6 ORDER BY id LIMIT $7", "sssdssi",
                     cx->project_id, app, contact, only_active, channel, page.after, page.size + 1);
#undef CONV_WHERE
    if (!st) return NULL;
    json_t *arr = json_array();
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, conversation_json(st));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return convo_page_result(arr, "conversations", &page, total, "id");
}

/* ---- conversations:recent: keyset paging over (last_received, id) ---- */

typedef struct {
    int has;
    int64_t last_received;
    char id[ULID_LEN + 1];
} recent_key_t;

/* "r1:<A|D>:<ms>:<id>" in base64url. */
static void recent_token(char order, int64_t last_received, const char *id, char out[96])
{
    char raw[80];
    int n = snprintf(raw, sizeof raw, "r1:%c:%" PRId64 ":%s", order, last_received, id);
    sec_b64url_encode(raw, (size_t)n, out, 96);
}

static int recent_token_parse(const char *tok, char order, recent_key_t *k, err_t *e)
{
    k->has = 0;
    if (!given(tok)) return 0;
    char raw[96];
    int n = sec_b64url_decode(tok, raw, sizeof raw - 1);
    if (n < 0) goto bad;
    raw[n] = '\0';
    if (strncmp(raw, "r1:", 3) != 0 || (raw[3] != 'A' && raw[3] != 'D') || raw[4] != ':') goto bad;
    if (raw[3] != order)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "page_token was issued for order=%s; repeat the request with that order",
                       raw[3] == 'A' ? "ASC" : "DESC");
    char *end;
    long long ms = strtoll(raw + 5, &end, 10);
    if (end == raw + 5 || *end != ':' || ms < 0 || !ulid_valid(end + 1)) goto bad;
    k->has = 1;
    k->last_received = ms;
    memcpy(k->id, end + 1, ULID_LEN + 1);
    return 0;
bad:
    return err_set(e, ERR_INVALID_ARGUMENT, "page_token is not one this server issued");
}

json_t *convo_conversation_recent(const convo_ctx_t *cx, const convo_conversation_recent_query_t *q,
                                  err_t *e)
{
    const char *app = given(q->app_id);
    convo_page_t page;
    recent_key_t key = {0};
    if (!app) {
        err_set(e, ERR_INVALID_ARGUMENT, "missing required query parameter app_id");
        return NULL;
    }
    if (convo_check_id(app, "app_id", e) < 0) return NULL;
    int only_active = query_bool(q->only_active, "only_active", e);
    if (only_active < 0) return NULL;
    char order = 'D';
    if (given(q->order)) {
        if (strcmp(q->order, "ASC") == 0)
            order = 'A';
        else if (strcmp(q->order, "DESC") != 0) {
            err_set(e, ERR_INVALID_ARGUMENT, "order must be ASC or DESC, got \"%.40s\"", q->order);
            return NULL;
        }
    }
    if (convo_page_parse(q->page_size, NULL, 10, 1000, &page, e) < 0 ||
        recent_token_parse(q->page_token, order, &key, e) < 0)
        return NULL;

    int64_t total = 0;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT COUNT(*) FROM conversations WHERE project_id = $1 AND "
                                   "app_id = $2 AND ($3 = 0 OR active = 1)",
                                   "ssd", cx->project_id, app, only_active);
    if (!st) return NULL;
    int rc = store_step(st, e);
    if (rc == 1) total = store_col_int(st, 0);
    store_done(st);
    if (rc < 0) return NULL;

#define RECENT_WHERE                                                                               \
    " FROM conversations WHERE project_id = $1 AND app_id = $2 AND ($3 = 0 OR active = 1) AND "
    if (order == 'D')
        st = store_query(cx->conn, e,
                         "SELECT " CONV_COLS RECENT_WHERE
                         "($4 = 0 OR last_received < $5 OR (last_received = $5 AND id < $6)) "
                         "ORDER BY last_received DESC, id DESC LIMIT $7",
                         "ssddisi", cx->project_id, app, only_active, key.has, key.last_received,
                         key.id, page.size + 1);
    else
        st = store_query(cx->conn, e,
                         "SELECT " CONV_COLS RECENT_WHERE
                         "($4 = 0 OR last_received > $5 OR (last_received = $5 AND id > $6)) "
                         "ORDER BY last_received ASC, id ASC LIMIT $7",
                         "ssddisi", cx->project_id, app, only_active, key.has, key.last_received,
                         key.id, page.size + 1);
#undef RECENT_WHERE
    if (!st) return NULL;
    json_t *arr = json_array();
    int64_t n = 0, last_lr = 0;
    char last_id[ULID_LEN + 1] = "", token[96] = "";
    while ((rc = store_step(st, e)) == 1) {
        if (n == page.size) { /* one more than a page: there is a next page */
            recent_token(order, last_lr, last_id, token);
            break;
        }
        json_array_append_new(arr, json_pack("{s:o}", "conversation", conversation_json(st)));
        last_lr = store_col_int(st, 5);
        snprintf(last_id, sizeof last_id, "%s", text_or(st, 0, ""));
        n++;
    }
    store_done(st);
    if (rc < 0) goto fail;
    size_t i;
    json_t *item = NULL;
    json_array_foreach(arr, i, item)
    {
        json_t *conv = json_object_get(item, "conversation"), *msg = NULL;
        rc = convo_message_last(cx, json_string_value(json_object_get(conv, "id")), &msg, e);
        if (rc < 0) goto fail;
        if (rc == 1) json_object_set_new(item, "last_message", msg);
    }
    return json_pack("{s:o, s:s, s:I}", "conversations", arr, "next_page_token", token,
                     "total_size", (json_int_t)total);
fail:
    json_decref(arr);
    return NULL;
}

/* ---- update ---- */

/* RFC 7386 JSON merge patch: a new value (target is not modified). */
static json_t *merge_patch(json_t *target, json_t *patch)
{
    if (!json_is_object(patch)) return json_incref(patch);
    json_t *result = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *k = NULL;
    json_t *v = NULL;
    json_object_foreach(patch, k, v)
    {
        if (json_is_null(v))
            json_object_del(result, k);
        else
            json_object_set_new(result, k, merge_patch(json_object_get(result, k), v));
    }
    return result;
}

json_t *convo_conversation_update(const convo_ctx_t *cx, const char *id, json_t *body,
                                  const convo_mask_t *mask, const char *strategy, err_t *e)
{
    int merge = 0;
    if (given(strategy)) {
        if (strcmp(strategy, "MERGE_PATCH") == 0)
            merge = 1;
        else if (strcmp(strategy, "REPLACE") != 0) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "metadata_update_strategy must be REPLACE or MERGE_PATCH, got \"%.40s\"",
                    strategy);
            return NULL;
        }
    }
    int want_md = convo_mask_wants(mask, body, "metadata");
    int want_mj = convo_mask_wants(mask, body, "metadata_json");
    int want_ch = convo_mask_wants(mask, body, "active_channel");
    int want_corr = convo_mask_wants(mask, body, "correlation_id");
    const char *metadata = "", *channel = "", *corr = "";
    json_t *mj = json_object_get(body, "metadata_json");
    if ((want_md && convo_str_field(body, "metadata", "metadata", 1024, &metadata, e) < 0) ||
        (want_ch && active_channel_field(body, &channel, e) < 0) ||
        (want_corr && convo_str_field(body, "correlation_id", "correlation_id", 128, &corr, e) < 0))
        return NULL;
    if (want_mj && mj && !json_is_object(mj) && !json_is_null(mj)) {
        err_set(e, ERR_INVALID_ARGUMENT, "field metadata_json must be an object");
        return NULL;
    }
    /* MERGE_PATCH without a patch leaves metadata_json as it is. */
    if (want_mj && merge && !mj) want_mj = 0;

    char *mj_text = NULL;
    if (store_begin(cx->conn, e) < 0) return NULL;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT metadata_json FROM conversations WHERE id = $1 AND "
                                   "project_id = $2",
                                   "ss", id, cx->project_id);
    if (!st) goto rollback;
    int rc = store_step(st, e);
    json_t *current = NULL;
    if (rc == 1 && !store_col_is_null(st, 0))
        current = json_loads(text_or(st, 0, "null"), JSON_DECODE_ANY, NULL);
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "conversation %s not found", id);
    if (rc <= 0) goto rollback;
    if (want_mj) {
        json_t *next = merge ? merge_patch(current, mj) : json_incref(mj);
        if (next && !json_is_null(next)) mj_text = jsonx_dump(next);
        json_decref(next);
    }
    json_decref(current);
    if (store_exec(cx->conn, e,
                   "UPDATE conversations SET "
                   "metadata = CASE WHEN $1 = 1 THEN $2 ELSE metadata END, "
                   "metadata_json = CASE WHEN $3 = 1 THEN $4 ELSE metadata_json END, "
                   "active_channel = CASE WHEN $5 = 1 THEN $6 ELSE active_channel END, "
                   "correlation_id = CASE WHEN $7 = 1 THEN $8 ELSE correlation_id END, "
                   "updated_at = $9 WHERE id = $10 AND project_id = $11",
                   "dsdsdsdsiss", want_md, metadata, want_mj, mj_text, want_ch, channel, want_corr,
                   corr, clock_now_ms(), id, cx->project_id) < 0)
        goto rollback;
    free(mj_text);
    mj_text = NULL;
    if (store_commit(cx->conn, e) < 0) return NULL;
    return convo_conversation_get(cx, id, e);
rollback:
    free(mj_text);
    store_rollback(cx->conn);
    return NULL;
}

json_t *convo_conversation_stop(const convo_ctx_t *cx, const char *id, err_t *e)
{
    if (store_begin(cx->conn, e) < 0) return NULL;
    int64_t n = store_exec(cx->conn, e,
                           "UPDATE conversations SET active = 0, updated_at = $1 WHERE id = $2 "
                           "AND project_id = $3 AND active = 1",
                           "iss", clock_now_ms(), id, cx->project_id);
    json_t *conv = n == 1 ? conversation_notify(cx, id, "CONVERSATION_STOP",
                                                "conversation_stop_notification", e)
                          : NULL;
    if (!conv || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        json_decref(conv);
        if (n != 0) return NULL;
    } else {
        json_decref(conv);
        return json_object();
    }
    int rc = convo_exists(cx, CONVO_KIND_CONVERSATION, id, e);
    if (rc == 1)
        err_set(e, ERR_FAILED_PRECONDITION, "conversation %s is already stopped (not active)", id);
    else if (rc == 0)
        err_set(e, ERR_NOT_FOUND, "conversation %s not found", id);
    return NULL;
}

json_t *convo_conversation_delete(const convo_ctx_t *cx, const char *id, err_t *e)
{
    if (store_begin(cx->conn, e) < 0) return NULL;
    int64_t n;
    json_t *conv =
        conversation_notify(cx, id, "CONVERSATION_DELETE", "conversation_delete_notification", e);
    if (!conv) {
        store_rollback(cx->conn);
        return NULL;
    }
    json_decref(conv);
    if (store_exec(cx->conn, e,
                   "DELETE FROM messages WHERE conversation_id = $1 AND project_id = $2", "ss", id,
                   cx->project_id) < 0 ||
        (n = store_exec(cx->conn, e, "DELETE FROM conversations WHERE id = $1 AND project_id = $2",
                        "ss", id, cx->project_id)) < 0) {
        store_rollback(cx->conn);
        return NULL;
    }
    if (n == 0) {
        store_rollback(cx->conn);
        err_set(e, ERR_NOT_FOUND, "conversation %s not found", id);
        return NULL;
    }
    if (store_commit(cx->conn, e) < 0) return NULL;
    return json_object();
}

/* ---- inject-message ---- */

json_t *convo_conversation_inject_message(const convo_ctx_t *cx, const char *id, json_t *body,
                                          err_t *e)
{
    static const char *const directions[] = {"TO_APP", "TO_CONTACT", NULL};
    static const char *const modes[] = {"CONVERSATION", "DISPATCH", NULL};
    const char *accept = NULL, *channel_s = NULL, *identity = NULL, *ci_app = "",
               *contact_id = NULL, *conv_id = NULL, *sender = "", *metadata = "";
    int dir = -1, mode = 0;
    json_t *ci = NULL;
    int64_t accept_ms = 0;
    if (jsonx_require(jsonx_str(body, "accept_time", "accept_time", &accept, e), "accept_time", e) <
        0)
        return NULL;
    if (clock_parse_rfc3339(accept, &accept_ms) < 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "field accept_time must be an RFC 3339 time, got \"%.64s\"", accept);
        return NULL;
    }
    if (jsonx_require(jsonx_obj(body, "channel_identity", "channel_identity", &ci, e),
                      "channel_identity", e) < 0 ||
        jsonx_require(jsonx_str(ci, "channel", "channel_identity.channel", &channel_s, e),
                      "channel_identity.channel", e) < 0)
        return NULL;
    int channel = convo_channel_parse(channel_s, "channel_identity.channel", e);
    if (channel < 0) return NULL;
    if (jsonx_require(
            convo_str_field(ci, "identity", "channel_identity.identity", 256, &identity, e),
            "channel_identity.identity", e) < 0)
        return NULL;
    if (!*identity) {
        err_set(e, ERR_INVALID_ARGUMENT, "missing required field channel_identity.identity");
        return NULL;
    }
    int got = jsonx_str(ci, "app_id", "channel_identity.app_id", &ci_app, e);
    if (got < 0 || (got && *ci_app && convo_check_id(ci_app, "channel_identity.app_id", e) < 0))
        return NULL;
    if (jsonx_require(jsonx_str(body, "contact_id", "contact_id", &contact_id, e), "contact_id",
                      e) < 0 ||
        convo_check_id(contact_id, "contact_id", e) < 0 ||
        jsonx_require(jsonx_enum(body, "direction", "direction", directions, &dir, e), "direction",
                      e) < 0 ||
        (got = jsonx_str(body, "conversation_id", "conversation_id", &conv_id, e)) < 0 ||
        convo_str_field(body, "sender_id", "sender_id", 256, &sender, e) < 0 ||
        jsonx_enum(body, "processing_mode", "processing_mode", modes, &mode, e) < 0 ||
        convo_str_field(body, "metadata", "metadata", 1024, &metadata, e) < 0)
        return NULL;
    if (got && *conv_id && strcmp(conv_id, id) != 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "field conversation_id (%.40s) does not match the conversation in the path (%s)",
                conv_id, id);
        return NULL;
    }
    json_t *am = json_object_get(body, "app_message"),
           *cm = json_object_get(body, "contact_message");
    if (am && json_is_null(am)) am = NULL;
    if (cm && json_is_null(cm)) cm = NULL;
    if ((am != NULL) == (cm != NULL)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "exactly one of app_message or contact_message is "
                "required%s",
                am ? ", got both" : "");
        return NULL;
    }
    if (dir == 1 && !am) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "direction TO_CONTACT needs app_message (contact_message goes with TO_APP)");
        return NULL;
    }
    if (dir == 0 && !cm) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "direction TO_APP needs contact_message (app_message goes with TO_CONTACT)");
        return NULL;
    }
    if (am ? convo_message_check_app(am, "app_message", e) < 0
           : convo_message_check_contact(cm, "contact_message", e) < 0)
        return NULL;

    if (store_begin(cx->conn, e) < 0) return NULL;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT app_id, contact_id FROM conversations WHERE id = $1 "
                                   "AND project_id = $2",
                                   "ss", id, cx->project_id);
    if (!st) goto rollback;
    char app_id[ULID_LEN + 1] = "", conv_contact[ULID_LEN + 1] = "";
    int rc = store_step(st, e);
    if (rc == 1) {
        snprintf(app_id, sizeof app_id, "%s", text_or(st, 0, ""));
        snprintf(conv_contact, sizeof conv_contact, "%s", text_or(st, 1, ""));
    }
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "conversation %s not found", id);
    if (rc <= 0) goto rollback;
    if (strcmp(conv_contact, contact_id) != 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "field contact_id (%s) is not the contact of conversation %s (%s)", contact_id, id,
                conv_contact);
        goto rollback;
    }
    convo_message_row_t m = {
        .app_id = app_id,
        .conversation_id = id,
        .contact_id = contact_id,
        .direction = directions[dir],
        .channel = convo_channel_names[channel],
        .identity = identity,
        .identity_app_id = ci_app,
        .accept_time = accept_ms,
        .kind = am ? "app_message" : "contact_message",
        .content = am ? am : cm,
        .metadata = metadata,
        .injected = 1,
        .sender_id = sender,
        .processing_mode = modes[mode],
    };
    char msg_id[ULID_LEN + 1];
    if (convo_message_insert(cx, &m, msg_id, e) < 0) goto rollback;
    if (store_commit(cx->conn, e) < 0) return NULL;
    return json_object();
rollback:
    store_rollback(cx->conn);
    return NULL;
}

/* ---- for send and receive ---- */

int convo_conversation_find_or_start(const convo_ctx_t *cx, const char *app_id,
                                     const char *contact_id, const char *channel,
                                     char conv_id_out[ULID_LEN + 1], int *started, err_t *e)
{
    char current[32] = "";
    *started = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = find_active(cx, app_id, contact_id, conv_id_out, current, e);
        if (rc < 0) return -1;
        if (rc == 1) {
            if (given(channel) && strcmp(current, channel) != 0 &&
                store_exec(cx->conn, e,
                           "UPDATE conversations SET active_channel = $1, updated_at = $2 "
                           "WHERE id = $3",
                           "sis", channel, clock_now_ms(), conv_id_out) < 0)
                return -1;
            return 0;
        }
        char id[ULID_LEN + 1];
        ulid_new(id);
        if (insert_conversation(cx, id, app_id, contact_id, 1, channel ? channel : "", "", NULL, "",
                                e) >= 0) {
            memcpy(conv_id_out, id, ULID_LEN + 1);
            *started = 1;
            json_t *conv = conversation_notify(cx, id, "CONVERSATION_START",
                                               "conversation_start_notification", e);
            json_decref(conv);
            return conv ? 0 : -1;
        }
        if (e->code != ERR_ALREADY_EXISTS) return -1;
        /* lost a race on conversations_one_active: take the winner's */
    }
    return -1;
}
