/* inbound.c: storing provider webhook events (see inbound.h). */
#include "convo/inbound.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/nudge.h"
#include "convo/apps.h"
#include "convo/contacts.h"
#include "convo/conversations.h"
#include "convo/events.h"
#include "convo/messages.h"

#include <string.h>

int convo_inbound_project(store_conn_t *c, const char *app_id, char project_id[ULID_LEN + 1],
                          err_t *e)
{
    store_stmt_t *st = store_query(c, e, "SELECT project_id FROM apps WHERE id = $1", "s", app_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) snprintf(project_id, ULID_LEN + 1, "%s", store_col_text(st, 0));
    store_done(st);
    if (rc == 0) return err_set(e, ERR_NOT_FOUND, "app %s not found", app_id);
    return rc < 0 ? -1 : 0;
}

static int app_dispatch_mode(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    store_stmt_t *st =
        store_query(cx->conn, e, "SELECT processing_mode FROM apps WHERE id = $1", "s", app_id);
    if (!st) return -1;
    int rc = store_step(st, e), dispatch = 0;
    if (rc == 1) dispatch = strcmp(store_col_text(st, 0), "DISPATCH") == 0;
    store_done(st);
    return rc < 0 ? -1 : dispatch;
}

/* A choice response names the message that carried the choices by the provider's id:
 * answer with Parley's id, as the Conversation API does (left as is if unknown). */
static int map_choice_reply(const convo_ctx_t *cx, const char *app_id, convo_channel_t ch,
                            json_t *contact_message, err_t *e)
{
    json_t *cr = json_object_get(contact_message, "choice_response_message");
    const char *pid = json_string_value(json_object_get(cr, "message_id"));
    if (!pid || !*pid) return 0;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT message_id FROM message_refs WHERE app_id = $1 AND "
                                   "channel = $2 AND provider_id = $3",
                                   "sss", app_id, convo_channel_names[ch], pid);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) json_object_set_new(cr, "message_id", json_string(store_col_text(st, 0)));
    store_done(st);
    return rc < 0 ? -1 : 0;
}

static int store_message(const convo_ctx_t *cx, const char *app_id, convo_channel_t ch,
                         const channel_event_t *ev, int dispatch_mode, err_t *e)
{
    const char *chname = convo_channel_names[ch];
    const char *scoped_app = convo_channel_app_scoped(ch) ? app_id : "";
    int64_t now = clock_now_ms();
    if (*ev->provider_id) {
        int64_t fresh = store_exec(cx->conn, e,
                                   "INSERT INTO inbound_seen (app_id, channel, provider_id, "
                                   "message_id, created_at) VALUES ($1, $2, $3, '', $4) "
                                   "ON CONFLICT DO NOTHING",
                                   "sssi", app_id, chname, ev->provider_id, now);
        if (fresh < 0) return -1;
        if (fresh == 0) return 0; /* a provider retry of a message already stored */
    }
    char contact_id[ULID_LEN + 1], conv_id[ULID_LEN + 1] = "", msg_id[ULID_LEN + 1];
    int created = 0;
    if (convo_contact_resolve(cx, ch, app_id, ev->identity, ev->display_name, 1, contact_id,
                              &created, e) < 0)
        return -1;
    if (!created && convo_contact_touch(cx, contact_id, now, e) < 0) {
        return -1;
    }
    if (!dispatch_mode) {
        int started = 0;
        if (convo_conversation_find_or_start(cx, app_id, contact_id, chname, conv_id, &started, e) <
            0)
            return -1;
    }
    if (map_choice_reply(cx, app_id, ch, ev->contact_message, e) < 0) return -1;
    convo_message_row_t row = {.app_id = app_id,
                               .conversation_id = *conv_id ? conv_id : NULL,
                               .contact_id = contact_id,
                               .direction = "TO_APP",
                               .channel = chname,
                               .identity = ev->identity,
                               .identity_app_id = scoped_app,
                               .accept_time = now,
                               .kind = "contact_message",
                               .content = ev->contact_message,
                               .processing_mode = dispatch_mode ? "DISPATCH" : "CONVERSATION"};
    if (convo_message_insert(cx, &row, msg_id, e) < 0) return -1;
    if (*ev->provider_id &&
        store_exec(cx->conn, e,
                   "UPDATE inbound_seen SET message_id = $1 WHERE app_id = $2 AND channel = $3 AND "
                   "provider_id = $4",
                   "ssss", msg_id, app_id, chname, ev->provider_id) < 0)
        return -1;
    json_t *m = convo_message_get(cx, msg_id, e);
    int rc = m ? convo_event_inbound(cx, app_id, m, e) : -1;
    json_decref(m);
    return rc;
}

/* A receipt that names no message but a time (Messenger's read/delivery watermark):
 * everything sent to that identity up to then has reached the status. */
static int store_watermark(const convo_ctx_t *cx, const char *app_id, convo_channel_t ch,
                           const channel_event_t *ev, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e,
        "SELECT id FROM messages WHERE app_id = $1 AND channel = $2 AND identity = $3 AND "
        "direction = 'TO_CONTACT' AND accept_time <= $4 AND status IN ('QUEUED_ON_CHANNEL', "
        "'DELIVERED') ORDER BY id LIMIT 1000",
        "sssi", app_id, convo_channel_names[ch], ev->identity, ev->time_ms);
    if (!st) return -1;
    json_t *ids = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(ids, json_string(store_col_text(st, 0)));
    store_done(st);
    size_t i;
    json_t *id = NULL;
    json_array_foreach(ids, i, id)
    {
        if (rc < 0) break;
        rc = convo_message_set_status(cx, json_string_value(id), ev->status, NULL, NULL, NULL, NULL,
                                      e);
        if (rc == 1) {
            json_t *m = convo_message_get(cx, json_string_value(id), e);
            rc = m ? convo_event_delivery(cx, app_id, m, ev->status, NULL, NULL, e) : -1;
            json_decref(m);
        }
    }
    json_decref(ids);
    return rc < 0 ? -1 : 0;
}

static int store_receipt(const convo_ctx_t *cx, const char *app_id, convo_channel_t ch,
                         const channel_event_t *ev, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT message_id FROM message_refs WHERE app_id = $1 AND "
                                   "channel = $2 AND provider_id = $3",
                                   "sss", app_id, convo_channel_names[ch], ev->provider_id);
    if (!st) return -1;
    char mid[ULID_LEN + 1] = "";
    int rc = store_step(st, e);
    if (rc == 1) snprintf(mid, sizeof mid, "%s", store_col_text(st, 0));
    store_done(st);
    if (rc <= 0) {
        if (rc == 0)
            log_kv(LOG_INFO, "receipt for an unknown message ignored", "app_id", app_id,
                   "provider_id", ev->provider_id);
        return rc;
    }
    if (strcmp(ev->status, "FAILED") == 0) {
        /* A delivery job still holds this message (it awaits a delivery report before
         * trying the next channel): the failure is that channel's, not the message's.
         * Note the reason and let the job fall back now. */
        int64_t waiting = store_exec(cx->conn, e,
                                     "UPDATE outbox SET due_at = $1 WHERE kind = 'deliver' AND "
                                     "target_id = $2",
                                     "is", clock_now_ms(), mid);
        if (waiting < 0) return -1;
        if (waiting > 0)
            return store_exec(cx->conn, e, "UPDATE messages SET status_reason = $1 WHERE id = $2",
                              "ss", *ev->reason_code ? ev->reason_code : "CHANNEL_FAILURE", mid) < 0
                       ? -1
                       : 0;
    }
    rc = convo_message_set_status(cx, mid, ev->status, *ev->reason_code ? ev->reason_code : NULL,
                                  NULL, NULL, NULL, e);
    if (rc <= 0) return rc; /* late or repeated report: nothing changes */
    json_t *m = convo_message_get(cx, mid, e);
    rc = m ? convo_event_delivery(cx, app_id, m, ev->status, ev->reason_code, "", e) : -1;
    json_decref(m);
    return rc;
}

int convo_inbound_store(const convo_ctx_t *cx, const char *app_id, convo_channel_t ch,
                        const channel_events_t *ev, err_t *e)
{
    if (ev->n == 0) return 0;
    if (store_begin(cx->conn, e) < 0) return -1;
    int dispatch_mode = app_dispatch_mode(cx, app_id, e), rc = dispatch_mode < 0 ? -1 : 0;
    for (size_t i = 0; i < ev->n && rc >= 0; i++) {
        const channel_event_t *x = &ev->items[i];
        if (x->kind == CHANNEL_EVENT_MESSAGE) {
            if (!x->contact_message || !*x->identity) continue;
            rc = store_message(cx, app_id, ch, x, dispatch_mode, e);
        } else if (*x->provider_id) {
            rc = store_receipt(cx, app_id, ch, x, e);
        } else if (*x->identity && x->time_ms > 0 &&
                   (strcmp(x->status, "READ") == 0 || strcmp(x->status, "DELIVERED") == 0)) {
            rc = store_watermark(cx, app_id, ch, x, e);
        }
    }
    if (rc < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        return -1;
    }
    nudge_mark();
    return 0;
}
