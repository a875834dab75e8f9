/* workspace.c: what an agent works with (routing.h): the dashboard, their conversations,
 * a conversation's transcript (read from the Conversation API through convo), replies
 * (a Conversation API message sent with convo_send on the conversation's app and
 * channel) and internal notes (stored here, never sent). */
#include "contact/routing.h"

#include "base/clock.h"
#include "base/jsonx.h"
#include "base/ulid.h"
#include "convo/messages.h"
#include "convo/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* One integer (or real, rounded) from a single-row query; *null set when SQL NULL. */
static int scalar(store_conn_t *c, err_t *e, double *out, const char *sql, const char *fmt,
                  const char *a, int64_t b, const char *d)
{
    store_stmt_t *st =
        fmt[2] == 's' ? store_query(c, e, sql, fmt, a, b, d) : store_query(c, e, sql, fmt, a, b);
    if (!st) return -1;
    int rc = store_step(st, e);
    *out = -1;
    if (rc == 1 && !store_col_is_null(st, 0)) {
        const char *t = store_col_text(st, 0);
        *out = t ? strtod(t, NULL) : 0;
    }
    store_done(st);
    return rc < 0 ? -1 : 0;
}

json_t *contact_dashboard(const contact_ctx_t *cx, err_t *e)
{
    int64_t now = clock_now_ms(), day = now - now % DAY_MS;
    json_t *cats = contact_category_list(cx, e);
    if (!cats) return NULL;
    json_t *per = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(cats, "categories"), i, v)
    {
        contact_queue_stats_t s = {0};
        if (contact_queue_stats(cx->conn, cx->project_id, jstr(v, "id"), &s, e) < 0) {
            json_decref(per);
            json_decref(cats);
            return NULL;
        }
        json_array_append_new(
            per,
            json_pack("{s:s, s:s, s:i, s:I}", "category_id", jstr(v, "id"), "name", jstr(v, "name"),
                      "waiting", s.waiting, "longest_wait_s",
                      (json_int_t)(s.oldest_queued_at ? (now - s.oldest_queued_at) / 1000 : 0)));
    }
    json_decref(cats);
    contact_queue_stats_t all = {0};
    if (contact_queue_stats(cx->conn, cx->project_id, NULL, &all, e) < 0) {
        json_decref(per);
        return NULL;
    }
    const char *me = cx->user_id ? cx->user_id : "";
    double my_active, my_handled, avg_wait, avg_handle, within, answered;
    if (scalar(cx->conn, e, &my_active,
               "SELECT COUNT(*) FROM contact_conversations WHERE agent_id = $1 AND status = "
               "'active' AND $2 >= 0",
               "si", me, 0, NULL) < 0 ||
        scalar(cx->conn, e, &my_handled,
               "SELECT COUNT(*) FROM contact_conversations WHERE agent_id = $3 AND status = "
               "'closed' AND closed_at >= $2 AND project_id = $1",
               "sis", cx->project_id, day, me) < 0 ||
        scalar(cx->conn, e, &avg_wait,
               "SELECT AVG(first_assigned_at - created_at) FROM contact_conversations WHERE "
               "project_id = $1 AND first_assigned_at >= $2",
               "si", cx->project_id, day, NULL) < 0 ||
        scalar(cx->conn, e, &avg_handle,
               "SELECT AVG(closed_at - first_assigned_at) FROM contact_conversations WHERE "
               "project_id = $1 AND closed_at >= $2 AND first_assigned_at IS NOT NULL",
               "si", cx->project_id, day, NULL) < 0 ||
        scalar(cx->conn, e, &answered,
               "SELECT COUNT(*) FROM contact_conversations WHERE project_id = $1 AND "
               "first_assigned_at >= $2",
               "si", cx->project_id, day, NULL) < 0 ||
        scalar(cx->conn, e, &within,
               "SELECT COUNT(*) FROM contact_conversations k JOIN contact_categories c ON c.id = "
               "k.category_id WHERE k.project_id = $1 AND k.first_assigned_at >= $2 AND "
               "k.first_assigned_at - k.created_at <= c.target_answer_s * 1000",
               "si", cx->project_id, day, NULL) < 0) {
        json_decref(per);
        return NULL;
    }
    json_t *r =
        json_pack("{s:o, s:i, s:I, s:i, s:i, s:i, s:i}", "categories", per, "waiting", all.waiting,
                  "longest_wait_s",
                  (json_int_t)(all.oldest_queued_at ? (now - all.oldest_queued_at) / 1000 : 0),
                  "agents_online", all.agents_online, "agents_available", all.agents_available,
                  "my_active", (int)(my_active < 0 ? 0 : my_active), "my_handled_today",
                  (int)(my_handled < 0 ? 0 : my_handled));
    json_object_set_new(r, "average_wait_s",
                        avg_wait < 0 ? json_null() : json_real(avg_wait / 1000.0));
    json_object_set_new(r, "average_handle_s",
                        avg_handle < 0 ? json_null() : json_real(avg_handle / 1000.0));
    json_object_set_new(r, "answered_within_target",
                        answered <= 0 ? json_null() : json_real(within / answered));
    return r;
}

json_t *contact_conv_list(const contact_ctx_t *cx, int mine, const char *status, err_t *e)
{
    static const char *const statuses[] = {"waiting", "active", "closed", NULL};
    int known = status == NULL;
    for (int i = 0; statuses[i] && !known; i++)
        known = strcmp(status, statuses[i]) == 0;
    if (!known) {
        err_set(e, ERR_INVALID_ARGUMENT, "status must be waiting, active or closed");
        return NULL;
    }
    if (mine && (!cx->user_id || !*cx->user_id)) {
        err_set(e, ERR_FAILED_PRECONDITION, "a project access key has no conversations of its own");
        return NULL;
    }
    if (!mine && !(cx->role & (CONTACT_R_ADMIN | CONTACT_R_SUPERVISOR))) {
        err_set(e, ERR_PERMISSION_DENIED, "only supervisors and admins list every conversation");
        return NULL;
    }
    store_stmt_t *st;
    if (mine)
        st = store_query(cx->conn, e,
                         "SELECT id FROM contact_conversations WHERE project_id = $1 AND agent_id "
                         "= $2 AND status = $3 ORDER BY assigned_at DESC, id LIMIT 500",
                         "sss", cx->project_id, cx->user_id, status ? status : "active");
    else if (status)
        st = store_query(cx->conn, e,
                         "SELECT id FROM contact_conversations WHERE project_id = $1 AND status = "
                         "$2 ORDER BY id DESC LIMIT 500",
                         "ss", cx->project_id, status);
    else
        st = store_query(cx->conn, e,
                         "SELECT id FROM contact_conversations WHERE project_id = $1 AND status <> "
                         "'closed' ORDER BY id DESC LIMIT 500",
                         "s", cx->project_id);
    json_t *ids = convo_col_strings(st, e);
    if (!ids) return NULL;
    int rc = 0;
    json_t *arr = json_array();
    size_t i;
    json_t *v;
    contact_ctx_t admin = *cx;
    admin.role = CONTACT_R_ADMIN;
    json_array_foreach(ids, i, v)
    {
        if (rc < 0) break;
        json_t *row = contact_conv_load(&admin, json_string_value(v), 0, e);
        if (!row)
            rc = -1;
        else
            json_array_append_new(arr, row);
    }
    json_decref(ids);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "conversations", arr);
}

json_t *contact_conv_get(const contact_ctx_t *cx, const char *id, err_t *e)
{
    json_t *row = contact_conv_load(cx, id, 0, e);
    if (!row) return NULL;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT id, author, text, created_at FROM contact_notes WHERE "
                                   "conversation_id = $1 ORDER BY id",
                                   "s", id);
    if (!st) {
        json_decref(row);
        return NULL;
    }
    json_t *notes = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(notes, json_pack("{s:s, s:s, s:s, s:I}", "id", store_col_text(st, 0),
                                               "author", store_col_text(st, 1), "text",
                                               store_col_text(st, 2), "created_at",
                                               (json_int_t)store_col_int(st, 3)));
    store_done(st);
    json_object_set_new(row, "notes", notes);
    if (rc < 0) {
        json_decref(row);
        return NULL;
    }
    return row;
}

json_t *contact_conv_transcript(const contact_ctx_t *cx, const char *id, err_t *e)
{
    json_t *row = contact_conv_load(cx, id, 0, e);
    if (!row) return NULL;
    convo_ctx_t vx = {cx->conn, cx->project_id, cx->seal_key, cx->actor};
    convo_message_query_t q = {.conversation_id = jstr(row, "conversation_id"),
                               .page_size = "1000"};
    json_t *list = convo_message_list(&vx, &q, e);
    json_decref(row);
    if (!list) return NULL;
    json_t *r = json_pack("{s:O}", "messages", json_object_get(list, "messages"));
    json_decref(list);
    return r;
}

/* The reply body as a Conversation API AppMessage. */
static json_t *reply_message(json_t *body, err_t *e)
{
    json_t *text = json_object_get(body, "text"), *media = json_object_get(body, "media"),
           *choices = json_object_get(body, "choices");
    if ((text != NULL) + (media != NULL) + (choices != NULL) != 1) {
        err_set(e, ERR_INVALID_ARGUMENT, "give exactly one of text, media or choices");
        return NULL;
    }
    if (text) {
        if (!json_is_string(text) || json_string_length(text) == 0) {
            err_set(e, ERR_INVALID_ARGUMENT, "field text must be a non-empty string");
            return NULL;
        }
        return json_pack("{s:{s:O}}", "text_message", "text", text);
    }
    if (media) {
        json_t *url = json_is_object(media) ? json_object_get(media, "url") : NULL;
        if (!json_is_string(url)) {
            err_set(e, ERR_INVALID_ARGUMENT, "field media.url is required (a string)");
            return NULL;
        }
        return json_pack("{s:{s:O}}", "media_message", "url", url);
    }
    json_t *prompt = json_is_object(choices) ? json_object_get(choices, "text") : NULL;
    json_t *opts = json_is_object(choices) ? json_object_get(choices, "options") : NULL;
    if (!json_is_string(prompt) || !json_is_array(opts) || json_array_size(opts) == 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "field choices needs text (a string) and options (a non-empty array of strings)");
        return NULL;
    }
    json_t *list = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(opts, i, o)
    {
        if (!json_is_string(o)) {
            json_decref(list);
            err_set(e, ERR_INVALID_ARGUMENT, "field choices.options[%zu] must be a string", i);
            return NULL;
        }
        json_array_append_new(list, json_pack("{s:{s:O}}", "text_message", "text", o));
    }
    return json_pack("{s:{s:{s:O}, s:o}}", "choice_message", "text_message", "text", prompt,
                     "choices", list);
}

json_t *contact_conv_reply(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    json_t *row = contact_conv_load(cx, id, 1, e);
    if (!row) return NULL;
    if (strcmp(jstr(row, "status"), "closed") == 0) {
        err_set(e, ERR_FAILED_PRECONDITION, "contact conversation %s is closed; cannot reply", id);
        json_decref(row);
        return NULL;
    }
    json_t *msg = reply_message(body, e);
    if (!msg) {
        json_decref(row);
        return NULL;
    }
    json_t *req = json_pack("{s:s, s:{s:s}, s:o}", "app_id", jstr(row, "app_id"), "recipient",
                            "contact_id", jstr(row, "contact_id"), "message", msg);
    if (*jstr(row, "channel"))
        json_object_set_new(req, "channel_priority_order", json_pack("[s]", jstr(row, "channel")));
    json_object_set_new(req, "correlation_id", json_string(id));
    convo_ctx_t vx = {cx->conn, cx->project_id, cx->seal_key, cx->actor};
    json_t *r = convo_send(&vx, req, e);
    json_decref(req);
    json_decref(row);
    return r;
}

json_t *contact_conv_note(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    json_t *row = contact_conv_load(cx, id, 1, e);
    if (!row) return NULL;
    json_decref(row);
    const char *text = NULL;
    if (jsonx_require(jsonx_str(body, "text", "text", &text, e), "text", e) < 0) return NULL;
    if (!*text || strlen(text) > 4000) {
        err_set(e, ERR_INVALID_ARGUMENT, "field text must be 1 to 4000 characters");
        return NULL;
    }
    char nid[ULID_LEN + 1];
    ulid_new(nid);
    int64_t now = clock_now_ms();
    if (store_exec(cx->conn, e,
                   "INSERT INTO contact_notes (id, project_id, conversation_id, author, text, "
                   "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                   "sssssi", nid, cx->project_id, id, cx->actor, text, now) < 0)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:I}", "id", nid, "author", cx->actor, "text", text,
                     "created_at", (json_int_t)now);
}
