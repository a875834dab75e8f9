/* events.c: callback emission into the outbox (see events.h). */
#include "convo/events.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/nudge.h"
#include "stream/stream.h"

#include <stdlib.h>
#include <string.h>

/* Callbacks are retried for a day after they were emitted (issue: "at least 24 hours"). */
#define EVENT_TTL_MS (25LL * 3600 * 1000)

int convo_event_emit(const convo_ctx_t *cx, const char *app_id, const char *trigger,
                     const char *payload_key, json_t *payload, err_t *e)
{
    return convo_event_emit_ex(cx, app_id, trigger, payload_key, payload, NULL, e);
}

/* The callback body (the stream's payload too). */
static char *event_body(const convo_ctx_t *cx, const char *app_id, const char *payload_key,
                        json_t *payload, json_t *extra)
{
    int64_t now = clock_now_ms();
    json_t *env = json_pack("{s:s, s:s, s:o, s:o, s:O}", "app_id", app_id, "project_id",
                            cx->project_id, "accepted_time", convo_time_json(now), "event_time",
                            convo_time_json(now), payload_key, payload);
    if (extra) json_object_update(env, extra);
    char *body = jsonx_dump(env);
    json_decref(env);
    return body;
}

/* Outbox rows for app_id's webhooks listening to trigger. */
static int emit_webhooks(const convo_ctx_t *cx, const char *app_id, const char *trigger,
                         const char *body, err_t *e)
{
    /* triggers is a JSON array of enum names: a quoted name cannot match another name.
     * (instr, not LIKE: a bound LIKE pattern makes SQLite re-prepare the statement.) */
    char pattern[80];
    snprintf(pattern, sizeof pattern, "\"%s\"", trigger);
    store_stmt_t *st =
        store_query(cx->conn, e,
                    "SELECT id FROM webhooks WHERE app_id = $1 AND project_id = $2 "
                    "AND target_type = 'HTTP' AND instr(triggers, $3) > 0 ORDER BY id",
                    "sss", app_id, cx->project_id, pattern);
    if (!st) return -1;
    int64_t now = clock_now_ms();
    int rc, any = 0;
    while ((rc = store_step(st, e)) == 1) {
        char id[ULID_LEN + 1];
        ulid_new(id);
        any = 1;
        /* A second statement while st is open: store.h allows distinct SQL. */
        if (store_exec(
                cx->conn, e,
                "INSERT INTO outbox (id, project_id, app_id, kind, target_id, payload, "
                "due_at, expires_at, created_at) VALUES ($1, $2, $3, 'callback', $4, $5, $6, "
                "$7, $6)",
                "sssssii", id, cx->project_id, app_id, store_col_text(st, 0), body, now,
                now + EVENT_TTL_MS) < 0) {
            rc = -1;
            break;
        }
    }
    store_done(st);
    if (any) nudge_mark();
    return rc < 0 ? -1 : 0;
}

int convo_event_emit_ex(const convo_ctx_t *cx, const char *app_id, const char *trigger,
                        const char *payload_key, json_t *payload, json_t *extra, err_t *e)
{
    char *body = event_body(cx, app_id, payload_key, payload, extra);
    int rc = stream_append(cx->conn, cx->project_id, app_id, trigger, body, cx->actor, e);
    if (rc == 0) rc = emit_webhooks(cx, app_id, trigger, body, e);
    free(body);
    return rc;
}

int convo_event_emit_project(const convo_ctx_t *cx, const char *trigger, const char *payload_key,
                             json_t *payload, err_t *e)
{
    json_t *apps = convo_col_strings(
        store_query(cx->conn, e,
                    "SELECT DISTINCT app_id FROM webhooks WHERE project_id = $1 ORDER BY app_id",
                    "s", cx->project_id),
        e);
    if (!apps) return -1;
    size_t i;
    json_t *a;
    char *body = event_body(cx, "", payload_key, payload, NULL);
    int rc = stream_append(cx->conn, cx->project_id, "", trigger, body, cx->actor, e);
    free(body);
    json_array_foreach(apps, i, a)
    {
        if (rc < 0) break;
        /* Each app's webhooks get a body naming that app, as before. */
        char *app_body = event_body(cx, json_string_value(a), payload_key, payload, NULL);
        rc = emit_webhooks(cx, json_string_value(a), trigger, app_body, e);
        free(app_body);
    }
    json_decref(apps);
    return rc < 0 ? -1 : 0;
}

/* Envelope extras for a message callback (new reference). */
static json_t *message_extra(const convo_ctx_t *cx, json_t *m, err_t *e)
{
    json_t *extra = json_pack("{s:s}", "message_metadata",
                              json_string_value(json_object_get(m, "metadata")) ?: "");
    const char *conv = json_string_value(json_object_get(m, "conversation_id"));
    if (!conv) return extra;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT a.report_view, c.metadata_json, c.correlation_id FROM "
                                   "conversations c JOIN apps a ON a.id = c.app_id WHERE c.id = $1",
                                   "s", conv);
    if (!st) {
        json_decref(extra);
        return NULL;
    }
    if (store_step(st, e) == 1) {
        const char *view = store_col_text(st, 0), *md = store_col_text(st, 1),
                   *corr = store_col_text(st, 2);
        if (view && strcmp(view, "FULL") == 0 && md) {
            json_t *v = json_loads(md, 0, NULL);
            if (v) json_object_set_new(extra, "conversation_metadata", v);
        }
        if (corr && *corr) json_object_set_new(extra, "correlation_id", json_string(corr));
    }
    store_done(st);
    return extra;
}

static int message_emit(const convo_ctx_t *cx, const char *app_id, json_t *m, const char *trigger,
                        const char *key, json_t *payload, err_t *e)
{
    json_t *extra = message_extra(cx, m, e);
    int rc = extra ? convo_event_emit_ex(cx, app_id, trigger, key, payload, extra, e) : -1;
    json_decref(extra);
    json_decref(payload);
    return rc;
}

/* The fields every message notification repeats. */
static json_t *message_core(json_t *m)
{
    json_t *p = json_object();
    static const char *const keys[] = {"conversation_id", "channel_identity", "contact_id",
                                       "metadata",        "processing_mode",  NULL};
    json_object_set(p, "message_id", json_object_get(m, "id"));
    for (int i = 0; keys[i]; i++)
        if (json_object_get(m, keys[i])) json_object_set(p, keys[i], json_object_get(m, keys[i]));
    return p;
}

int convo_event_delivery(const convo_ctx_t *cx, const char *app_id, json_t *m, const char *status,
                         const char *reason_code, const char *description, err_t *e)
{
    json_t *p = message_core(m);
    json_object_set_new(p, "status", json_string(status));
    if (reason_code && *reason_code)
        json_object_set_new(p, "reason",
                            json_pack("{s:s, s:s}", "code", reason_code, "description",
                                      description ? description : ""));
    return message_emit(cx, app_id, m, "MESSAGE_DELIVERY", "message_delivery_report", p, e);
}

int convo_event_sent(const convo_ctx_t *cx, const char *app_id, json_t *m, err_t *e)
{
    json_t *extra = message_extra(cx, m, e); /* one lookup serves both callbacks */
    if (!extra) return -1;
    json_t *d = message_core(m), *s = message_core(m);
    json_object_set_new(d, "status", json_string("QUEUED_ON_CHANNEL"));
    json_object_set(s, "submitted_message", json_object_get(m, "app_message"));
    int rc =
        convo_event_emit_ex(cx, app_id, "MESSAGE_DELIVERY", "message_delivery_report", d, extra, e);
    if (rc == 0)
        rc = convo_event_emit_ex(cx, app_id, "MESSAGE_SUBMIT", "message_submit_notification", s,
                                 extra, e);
    json_decref(d);
    json_decref(s);
    json_decref(extra);
    return rc;
}

int convo_event_inbound(const convo_ctx_t *cx, const char *app_id, json_t *m, err_t *e)
{
    return message_emit(cx, app_id, m, "MESSAGE_INBOUND", "message", json_incref(m), e);
}

int convo_webhook_target(const convo_ctx_t *cx, const char *webhook_id, convo_webhook_target_t *out,
                         err_t *e)
{
    memset(out, 0, sizeof *out);
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT target, secret_sealed, client_credentials_sealed FROM "
                                   "webhooks WHERE id = $1 AND project_id = $2",
                                   "ss", webhook_id, cx->project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        out->target = xstrdup(store_col_text(st, 0));
        json_t *secret =
            store_col_is_null(st, 1) ? NULL : convo_open_json(cx, store_col_text(st, 1));
        if (json_is_string(secret) && *json_string_value(secret))
            out->secret = xstrdup(json_string_value(secret));
        json_decref(secret);
        if (!store_col_is_null(st, 2))
            out->client_credentials = convo_open_json(cx, store_col_text(st, 2));
    }
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "webhook %s not found", webhook_id);
    return rc == 1 ? 0 : -1;
}

void convo_webhook_target_free(convo_webhook_target_t *t)
{
    free(t->target);
    free(t->secret);
    json_decref(t->client_credentials);
    memset(t, 0, sizeof *t);
}
