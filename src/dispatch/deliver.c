/* deliver.c: the 'deliver' job kind: one accepted message on its way to the contact.
 * The job's payload is {"channels":[{channel, identity, app_id}], "index": i,
 * "channel_properties": {...}, "await_dr": bool}. Each claim tries channels[index]
 * through its adapter:
 *   provider accepts   -> QUEUED_ON_CHANNEL, MESSAGE_SUBMIT + MESSAGE_DELIVERY callbacks,
 *                         provider id recorded for receipts; the job ends, or, when the app
 *                         asks for delivery-report-based fallback, waits for a receipt
 *   transient failure  -> retried with backoff on the same channel until the message's TTL
 *   permanent failure  -> SWITCHING_CHANNEL report and the next channel at once, or FAILED
 *                         (with the provider's reason) when none is left. */
#define _GNU_SOURCE
#include "dispatch/dispatch_internal.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/nudge.h"
#include "convo/apps.h"
#include "channels/render.h"
#include "convo/messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *current(job_t *j)
{
    return json_array_get(json_object_get(j->state, "channels"),
                          (size_t)json_integer_value(json_object_get(j->state, "index")));
}

/* The delivery report for the message as it is now (status and channel just changed). */
static int report(deliver_outcome_t *o, const char *status, const char *code,
                  const char *description, err_t *e)
{
    json_t *m = convo_message_get(&o->cx, o->message_id, e);
    int rc = !m ? -1
             : strcmp(status, "QUEUED_ON_CHANNEL") == 0
                 ? convo_event_sent(&o->cx, o->app_id, m, e)
                 : convo_event_delivery(&o->cx, o->app_id, m, status, code, description, e);
    json_decref(m);
    return rc;
}

static int save_state(deliver_outcome_t *o, int64_t due, err_t *e)
{
    char *text = jsonx_dump(o->state);
    int64_t n = store_exec(o->cx.conn, e,
                           "UPDATE outbox SET payload = $1, due_at = $2, lease_until = 0, "
                           "attempts = 0 WHERE id = $3",
                           "sis", text, due, o->job_id);
    free(text);
    return n < 0 ? -1 : 0;
}

void deliver_fall_back(deliver_outcome_t *o, const char *code, const char *description)
{
    err_t e;
    json_t *chans = json_object_get(o->state, "channels");
    json_int_t next = json_integer_value(json_object_get(o->state, "index")) + 1;
    log_kv(LOG_INFO, "message channel failed", "message_id", o->message_id, "reason", code,
           "detail", description);
    if (store_begin(o->cx.conn, &e) < 0) return;
    int rc;
    if ((size_t)next < json_array_size(chans)) {
        rc = convo_message_set_status(&o->cx, o->message_id, "SWITCHING_CHANNEL", code, NULL, NULL,
                                      NULL, &e);
        if (rc >= 0) rc = report(o, "SWITCHING_CHANNEL", code, description, &e);
        json_object_set_new(o->state, "index", json_integer(next));
        json_object_set_new(o->state, "await_dr", json_false());
        if (rc >= 0) rc = save_state(o, clock_now_ms(), &e);
    } else {
        atomic_fetch_add(&dispatch_m_send_failed, 1);
        rc = convo_message_set_status(&o->cx, o->message_id, "FAILED", code, NULL, NULL, NULL, &e);
        if (rc >= 0) rc = report(o, "FAILED", code, description, &e);
        if (rc >= 0)
            rc = store_exec(o->cx.conn, &e, "DELETE FROM outbox WHERE id = $1", "s", o->job_id) < 0
                     ? -1
                     : 0;
    }
    if (rc < 0 || store_commit(o->cx.conn, &e) < 0) {
        store_rollback(o->cx.conn);
        log_kv(LOG_ERROR, "message fallback not recorded; will retry", "message_id", o->message_id,
               "error", e.message);
    }
    nudge_mark();
}

void deliver_sent(deliver_outcome_t *o, const char *provider_ids)
{
    err_t e;
    json_t *to = json_array_get(json_object_get(o->state, "channels"),
                                (size_t)json_integer_value(json_object_get(o->state, "index")));
    const char *ch = json_string_value(json_object_get(to, "channel"));
    json_t *fb = json_object_get(o->app, "delivery_report_based_fallback");
    int more = (size_t)json_integer_value(json_object_get(o->state, "index")) + 1 <
               json_array_size(json_object_get(o->state, "channels"));
    int await_dr = more && json_is_true(json_object_get(fb, "enabled"));
    atomic_fetch_add(&dispatch_m_sent, 1);
    if (store_begin(o->cx.conn, &e) < 0) return;
    int rc = convo_message_set_status(&o->cx, o->message_id, "QUEUED_ON_CHANNEL", NULL, ch,
                                      json_string_value(json_object_get(to, "identity")),
                                      json_string_value(json_object_get(to, "app_id")), &e);
    /* Receipts name the provider's id (SMS: one per part, comma-separated). */
    for (const char *p = provider_ids ? provider_ids : ""; rc >= 0 && *p;) {
        size_t len = strcspn(p, ",");
        char id[160];
        snprintf(id, sizeof id, "%.*s", (int)(len < sizeof id ? len : sizeof id - 1), p);
        if (*id)
            rc = store_exec(o->cx.conn, &e,
                            "INSERT INTO message_refs (app_id, channel, provider_id, message_id) "
                            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                            "ssss", o->app_id, ch, id, o->message_id) < 0
                     ? -1
                     : 0;
        p += len + (p[len] == ',');
    }
    if (rc >= 0) rc = report(o, "QUEUED_ON_CHANNEL", NULL, NULL, &e);
    if (rc >= 0) {
        if (await_dr) {
            json_int_t wait_s =
                json_integer_value(json_object_get(fb, "delivery_report_waiting_time"));
            json_object_set_new(o->state, "await_dr", json_true());
            rc = save_state(o, clock_now_ms() + (wait_s > 0 ? wait_s : 60) * 1000, &e);
        } else {
            rc = store_exec(o->cx.conn, &e, "DELETE FROM outbox WHERE id = $1", "s", o->job_id) < 0
                     ? -1
                     : 0;
        }
    }
    if (rc < 0 || store_commit(o->cx.conn, &e) < 0) {
        store_rollback(o->cx.conn);
        log_kv(LOG_ERROR, "message sent but not recorded", "message_id", o->message_id, "error",
               e.message);
    }
    nudge_mark();
}

static deliver_outcome_t outcome_of(dispatch_t *d, job_t *j)
{
    deliver_outcome_t o = {.cx = dispatch_cx(d, j),
                           .app_id = j->app_id,
                           .job_id = j->id,
                           .message_id = j->target_id,
                           .state = j->state,
                           .app = j->app};
    return o;
}

static void fall_back(dispatch_t *d, job_t *j, const char *code, const char *description)
{
    deliver_outcome_t o = outcome_of(d, j);
    if (o.cx.conn) deliver_fall_back(&o, code, description);
}

static json_t *credential_for(json_t *app, const char *channel)
{
    size_t i;
    json_t *c = NULL;
    json_array_foreach(json_object_get(app, "channel_credentials"), i, c)
    {
        const char *ch = json_string_value(json_object_get(c, "channel"));
        if (ch && strcmp(ch, channel) == 0) return c;
    }
    return NULL;
}

/* SMS: the text goes to the app's SMPP session; its answer arrives on the session's
 * thread (sms.c), so the job stays leased, not in flight here, until then. */
static int deliver_sms(dispatch_t *d, job_t *j, json_t *cred, json_t *to, convo_ctx_t *cx)
{
    err_t e;
    char *text =
        d->o.sms ? channel_render_text(json_object_get(j->message, "app_message"), &e) : NULL;
    if (!d->o.sms) {
        fall_back(d, j, "CHANNEL_CONFIGURATION_MISSING", "SMS is not available in this process");
        return 0;
    }
    if (!text) {
        fall_back(d, j, "BAD_REQUEST", e.message);
        return 0;
    }
    int rc = sms_ensure(d->o.sms, j->project_id, j->app_id,
                        (int)json_integer_value(json_object_get(cred, "credential_ordinal_number")),
                        json_object_get(cred, "static_bearer"), &e);
    /* Leased until the message expires: the session reports, or a restart retries. Leased
     * before the submit: the SMSC's answer may be handled (and the job re-queued for the
     * next channel) before this thread would get to a later UPDATE, which then stuck it. */
    if (rc == 0 && store_exec(cx->conn, &e, "UPDATE outbox SET lease_until = $1 WHERE id = $2",
                              "is", j->expires_at, j->id) < 0) {
        free(text);
        dispatch_row_backoff(d, j, e.message);
        return 0;
    }
    if (rc == 0)
        rc = sms_submit(d->o.sms, j->app_id, json_string_value(json_object_get(to, "identity")),
                        text, j->id, &e);
    free(text);
    if (rc < 0 && e.code == ERR_RESOURCE_EXHAUSTED) {
        dispatch_row_backoff(d, j, e.message);
    } else if (rc < 0) {
        fall_back(d, j,
                  e.code == ERR_INVALID_ARGUMENT ? "RECIPIENT_INVALID_CHANNEL_IDENTITY"
                                                 : "CHANNEL_BAD_CONFIGURATION",
                  e.message);
    }
    return 0;
}

void deliver_preload(dispatch_t *d, job_t *claimed)
{
    for (job_t *j = claimed; j; j = j->next) {
        if (strcmp(j->kind, "deliver") != 0) continue;
        err_t e;
        convo_ctx_t cx = dispatch_cx(d, j);
        if (!cx.conn) return;
        j->message = convo_message_get(&cx, j->target_id, &e);
        for (job_t *o = claimed; o != j && !j->app; o = o->next)
            if (o->app && strcmp(o->app_id, j->app_id) == 0) j->app = json_incref(o->app);
        if (!j->app) j->app = convo_app_get_internal(&cx, j->app_id, &e);
    }
}

int deliver_start(dispatch_t *d, job_t *j)
{
    err_t e;
    convo_ctx_t cx = dispatch_cx(d, j);
    if (!cx.conn) return 0;
    j->state = json_loads(j->payload, 0, NULL);
    if (!j->message) j->message = convo_message_get(&cx, j->target_id, &e);
    if (!j->state || !j->message) { /* deleted meanwhile (by API or retention) */
        dispatch_row_done(d, j);
        return 0;
    }
    if (json_is_true(json_object_get(j->state, "await_dr"))) {
        const char *st = json_string_value(
            json_object_get(json_object_get(j->message, "message_status"), "status"));
        if (st && (strcmp(st, "DELIVERED") == 0 || strcmp(st, "READ") == 0)) {
            dispatch_row_done(d, j);
            return 0;
        }
        /* A FAILED receipt left its reason on the message (convo/inbound.c); else time ran out. */
        const char *why = json_string_value(
            json_object_get(json_object_get(j->message, "message_status"), "reason"));
        if (why && *why)
            fall_back(d, j, why, "the provider reported the message failed");
        else
            fall_back(d, j, "DELIVERY_REPORT_TIME_OUT", "no delivery report in time");
        return 0;
    }
    if (!j->app) j->app = convo_app_get_internal(&cx, j->app_id, &e);
    if (!j->app) {
        json_object_set_new(j->state, "index", json_integer(1 << 20)); /* nothing left */
        fall_back(d, j, "UNKNOWN_APP", e.message);
        return 0;
    }
    json_t *to = current(j);
    const char *ch = json_string_value(json_object_get(to, "channel"));
    int chi = ch ? convo_channel_parse(ch, "channel", NULL) : -1;
    json_t *cred = ch ? credential_for(j->app, ch) : NULL;
    j->adapter = chi >= 0 ? channel_get((convo_channel_t)chi) : NULL;
    if (!cred) {
        fall_back(d, j, "CHANNEL_CONFIGURATION_MISSING",
                  "the app has no credential for this channel");
        return 0;
    }
    if (chi == CONVO_SMS) return deliver_sms(d, j, cred, to, &cx);
    if (!j->adapter || !j->adapter->send || !j->adapter->send_result) {
        fall_back(d, j, "CHANNEL_CONFIGURATION_MISSING",
                  chi == CONVO_SMS ? "SMS (SMPP) is not connected to messages:send yet"
                                   : "this channel cannot send yet");
        return 0;
    }
    const char *base = d->o.base_url[chi] && *d->o.base_url[chi] ? d->o.base_url[chi]
                                                                 : j->adapter->default_base_url;
    json_t *credential = json_deep_copy(json_object_get(cred, j->adapter->credential_key));
    if (!credential) credential = json_object();
    if (json_object_get(cred, "callback_secret"))
        json_object_set(credential, "callback_secret", json_object_get(cred, "callback_secret"));
    channel_send_t in = {.base_url = base,
                         .credential = credential,
                         .recipient = json_string_value(json_object_get(to, "identity")),
                         .app_message = json_object_get(j->message, "app_message"),
                         .channel_properties = json_object_get(j->state, "channel_properties"),
                         .message_id = j->target_id};
    int rc = j->adapter->send(&in, &j->req, &e);
    json_decref(credential);
    if (rc < 0) {
        fall_back(d, j, "BAD_REQUEST", e.message);
        return 0;
    }
    if (dispatch_http(d, j, &j->req) < 0) {
        dispatch_row_backoff(d, j, "cannot start the request");
        return 0;
    }
    return 1;
}

int deliver_finish(dispatch_t *d, job_t *j, CURLcode rc, long status)
{
    channel_result_t r;
    memset(&r, 0, sizeof r);
    j->adapter->send_result(rc == CURLE_OK ? status : 0, j->resp.data ? j->resp.data : "",
                            j->resp.len, &r);
    if (r.outcome == CHANNEL_SENT) {
        deliver_outcome_t o = outcome_of(d, j);
        if (o.cx.conn) deliver_sent(&o, r.provider_id);
    } else if (r.outcome == CHANNEL_RETRY) {
        char why[400];
        snprintf(why, sizeof why, "%s: %s", r.reason_code,
                 rc == CURLE_OK ? r.description : curl_easy_strerror(rc));
        if (!dispatch_row_backoff(d, j, why)) {
            json_object_set_new(j->state, "index", json_integer(1 << 20)); /* TTL is over */
            fall_back(d, j, "MESSAGE_EXPIRED", why);
        }
    } else {
        fall_back(d, j, *r.reason_code ? r.reason_code : "CHANNEL_FAILURE", r.description);
    }
    return 0;
}
