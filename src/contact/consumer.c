/* consumer.c: the contact module's entry (contact.h) and its one background thread: the
 * "contact" stream consumer, then, each turn, the mirror of what it queued, the
 * grace-period requeue, stats ticks and event trimming.
 *
 * Stream events handled: MESSAGE_INBOUND (a new Conversation API conversation on a linked
 * app enters the queue unless a flow claims it; a message on an open one is an event for
 * its agent), MESSAGE_DELIVERY (a delivery-status event for the agent), CONTACT_HANDOVER
 * (Flows hands a conversation over: category and priority). Handlers only write rows in
 * the consumer's transaction; the allocator hears of them after the commit. */
#include "contact/contact.h"
#include "contact/routing.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/nudge.h"
#include "contact/gdpr.h"
#include "convo/contacts.h"
#include "stream/stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static struct {
    store_t *store;
    uint8_t seal_key[32];
    int started;
    atomic_int stop;
    pthread_t thread;
    int64_t stats_ms, keep_ms;
} W;

static int (*_Atomic g_claims)(const char *project_id, const char *app_id);

void contact_set_flow_claim(int (*claims)(const char *project_id, const char *app_id))
{
    atomic_store(&g_claims, claims);
}

const uint8_t *contact_seal_key(void)
{
    return W.started ? W.seal_key : NULL;
}

static const char *jpath(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    if (c) v = json_object_get(v, c);
    return json_string_value(v);
}

/* The open contact conversation of a Conversation API conversation: 1 with id/agent
 * (agent "" while waiting), 0 when none, -1 on error. */
static int open_conv(store_conn_t *c, const char *project_id, const char *convo_id, char *id,
                     char *agent, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, agent_id FROM contact_conversations WHERE "
                                   "conversation_id = $1 AND project_id = $2 AND status <> "
                                   "'closed' ORDER BY id DESC LIMIT 1",
                                   "ss", convo_id, project_id);
    id[0] = agent[0] = '\0';
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        snprintf(id, CONTACT_ID_MAX, "%s", store_col_text(st, 0));
        const char *a = store_col_text(st, 1);
        snprintf(agent, CONTACT_ID_MAX, "%s", a ? a : "");
    }
    store_done(st);
    return rc;
}

static const char *first_text(json_t *msg)
{
    json_t *cm = json_object_get(msg, "contact_message");
    const char *t = jpath(cm, "text_message", "text", NULL);
    if (!t) t = jpath(cm, "choice_response_message", "postback_data", NULL);
    if (!t) t = jpath(cm, "media_message", "caption", NULL);
    return t ? t : "";
}

static int on_inbound(store_conn_t *c, const stream_event_t *ev, err_t *e)
{
    json_t *msg = json_object_get(stream_event_payload(ev), "message");
    const char *convo_id = json_string_value(json_object_get(msg, "conversation_id"));
    const char *contact_id = json_string_value(json_object_get(msg, "contact_id"));
    if (!convo_id || !*convo_id || !*ev->app_id) return 0;
    char id[CONTACT_ID_MAX], agent[CONTACT_ID_MAX];
    int rc = open_conv(c, ev->project_id, convo_id, id, agent, e);
    if (rc < 0) return -1;
    if (rc == 1) {
        if (!*agent) return 0;
        json_t *d = json_pack("{s:s, s:O}", "conversation_id", id, "message", msg);
        return contact_event_add(c, ev->project_id, agent, "message", d, e) < 0 ? -1 : 0;
    }
    rc = contact_channel_linked(c, ev->project_id, ev->app_id, e);
    if (rc <= 0) return rc;
    int (*claims)(const char *, const char *) = atomic_load(&g_claims);
    if (claims && claims(ev->project_id, ev->app_id)) return 0;
    const char *channel = jpath(msg, "channel_identity", "channel", NULL);
    json_t *meta = NULL;
    if (contact_id) {
        convo_ctx_t vx = {c, ev->project_id, W.seal_key, NULL};
        err_t ce;
        json_t *contact = convo_contact_get(&vx, contact_id, &ce);
        const char *m = json_string_value(json_object_get(contact, "metadata"));
        if (m && *m) meta = json_loads(m, 0, NULL);
        json_decref(contact);
    }
    contact_route_input_t in = {ev->app_id, channel, first_text(msg), meta};
    char cat[CONTACT_ID_MAX];
    int priority = 0;
    rc = contact_rules_route(c, ev->project_id, &in, cat, &priority, e);
    json_decref(meta);
    if (rc < 0) return -1;
    contact_enqueue_t q = {convo_id, contact_id, ev->app_id, channel, cat, priority, "inbound"};
    return contact_queue_enqueue(c, ev->project_id, &q, id, e);
}

static int on_delivery(store_conn_t *c, const stream_event_t *ev, err_t *e)
{
    json_t *r = json_object_get(stream_event_payload(ev), "message_delivery_report");
    const char *convo_id = json_string_value(json_object_get(r, "conversation_id"));
    if (!convo_id) return 0;
    char id[CONTACT_ID_MAX], agent[CONTACT_ID_MAX];
    int rc = open_conv(c, ev->project_id, convo_id, id, agent, e);
    if (rc <= 0 || !*agent) return rc < 0 ? -1 : 0;
    json_t *d = json_pack("{s:s, s:s?, s:s?, s:O?}", "conversation_id", id, "message_id",
                          json_string_value(json_object_get(r, "message_id")), "status",
                          json_string_value(json_object_get(r, "status")), "reason",
                          json_object_get(r, "reason"));
    return contact_event_add(c, ev->project_id, agent, "delivery", d, e) < 0 ? -1 : 0;
}

/* {conversation_id, contact_id, app_id, channel, category (id or name), priority}. */
static int on_handover(store_conn_t *c, const stream_event_t *ev, err_t *e)
{
    json_t *p = stream_event_payload(ev);
    const char *convo_id = json_string_value(json_object_get(p, "conversation_id"));
    const char *app_id = json_string_value(json_object_get(p, "app_id"));
    if (!convo_id || !app_id) {
        log_kv(LOG_WARN, "CONTACT_HANDOVER without conversation_id or app_id", "project",
               ev->project_id);
        return 0;
    }
    char id[CONTACT_ID_MAX], agent[CONTACT_ID_MAX];
    int rc = open_conv(c, ev->project_id, convo_id, id, agent, e);
    if (rc != 0) return rc < 0 ? -1 : 0; /* already in the contact center */
    const char *category = json_string_value(json_object_get(p, "category"));
    char cat[CONTACT_ID_MAX] = "";
    int priority = 0;
    if (category && *category) {
        store_stmt_t *st = store_query(c, e,
                                       "SELECT id, priority FROM contact_categories WHERE "
                                       "project_id = $1 AND (id = $2 OR name = $2)",
                                       "ss", ev->project_id, category);
        if (!st) return -1;
        if ((rc = store_step(st, e)) == 1) {
            snprintf(cat, sizeof cat, "%s", store_col_text(st, 0));
            priority = (int)store_col_int(st, 1);
        }
        store_done(st);
        if (rc < 0) return -1;
    }
    const char *channel = json_string_value(json_object_get(p, "channel"));
    if (!cat[0]) {
        contact_route_input_t in = {app_id, channel, "", NULL};
        if (contact_rules_route(c, ev->project_id, &in, cat, &priority, e) < 0) return -1;
    }
    json_t *pr = json_object_get(p, "priority");
    if (json_is_integer(pr)) priority = (int)json_integer_value(pr);
    contact_enqueue_t q = {convo_id,  json_string_value(json_object_get(p, "contact_id")),
                           app_id,    channel,
                           cat,       priority,
                           "handover"};
    return contact_queue_enqueue(c, ev->project_id, &q, id, e);
}

static int handle(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    (void)ud;
    if (strcmp(ev->kind, "MESSAGE_INBOUND") == 0) return on_inbound(c, ev, e);
    if (strcmp(ev->kind, "MESSAGE_DELIVERY") == 0) return on_delivery(c, ev, e);
    if (strcmp(ev->kind, "CONTACT_HANDOVER") == 0) return on_handover(c, ev, e);
    return 0;
}

static void stats_tick(store_conn_t *c)
{
    char ids[64][27];
    int n = contact_queue_projects(ids, 64);
    int64_t now = clock_now_ms();
    for (int i = 0; i < n; i++) {
        err_t e;
        contact_queue_stats_t s = {0};
        if (contact_queue_stats(c, ids[i], NULL, &s, &e) < 0) continue;
        json_t *d =
            json_pack("{s:i, s:I, s:i, s:i}", "waiting", s.waiting, "longest_wait_s",
                      (json_int_t)(s.oldest_queued_at ? (now - s.oldest_queued_at) / 1000 : 0),
                      "agents_online", s.agents_online, "agents_available", s.agents_available);
        if (store_begin(c, &e) < 0) {
            json_decref(d);
            continue;
        }
        if (contact_event_add(c, ids[i], "*", "stats", d, &e) < 0 || store_commit(c, &e) < 0)
            store_rollback(c);
    }
    contact_events_publish();
}

int contact_consume_once(store_t *s, err_t *e)
{
    static const char *const kinds[] = {"MESSAGE_INBOUND", "MESSAGE_DELIVERY", "CONTACT_HANDOVER",
                                        NULL};
    int n = stream_consume_in(s, CONTACT_CONSUMER, kinds, handle, NULL, 200, e);
    contact_queue_flush(s, n < 0);
    if (n > 0) contact_events_publish();
    return n;
}

static void *worker(void *arg)
{
    (void)arg;
    unsigned long seen = 0;
    int64_t next_stats = clock_mono_ms() + W.stats_ms, next_trim = 0, next_grace = 0;
    while (!atomic_load(&W.stop)) {
        err_t e;
        store_conn_t *c = store_conn(W.store, &e);
        int n = contact_consume_once(W.store, &e);
        if (n < 0) log_kv(LOG_WARN, "contact consumer failed", "error", e.message);
        int64_t mono = clock_mono_ms();
        if (c && mono >= next_grace) {
            next_grace = mono + 200;
            if (contact_queue_grace_sweep(c, clock_now_ms(), &e) < 0)
                log_kv(LOG_WARN, "contact grace sweep failed", "error", e.message);
        }
        if (c && mono >= next_stats) {
            next_stats = mono + W.stats_ms;
            stats_tick(c);
        }
        if (c && mono >= next_trim) {
            next_trim = mono + 600000;
            int64_t gone = 0;
            for (int i = 0; i < 100; i++) /* in slices, so writers are not held up long */
                if ((gone = contact_events_trim(c, clock_now_ms() - W.keep_ms, &e)) < 5000) break;
            if (gone < 0) log_kv(LOG_WARN, "contact event trim failed", "error", e.message);
        }
        if (n <= 0) nudge_wait(&seen, 200);
    }
    return NULL;
}

int contact_start(store_t *s, const uint8_t *seal_key, const config_t *cfg, err_t *e)
{
    W.store = s;
    memcpy(W.seal_key, seal_key, 32);
    W.stats_ms = cfg->contact_stats_interval_s * 1000;
    W.keep_ms = cfg->contact_events_keep_s * 1000;
    contact_queue_init(cfg->contact_offline_grace_s);
    static int registered;
    if (!registered++) contact_anonymize_register(contact_routing_anonymize);
    store_conn_t *c = store_conn(s, e);
    if (!c) return -1;
    contact_events_seed(c);
    /* A new install starts at the stream's head: history before Contact existed is not a
     * queue of conversations to answer. */
    int64_t cur = stream_cursor(c, CONTACT_CONSUMER, e);
    if (cur < 0) return -1;
    if (cur == 0) {
        int64_t head = stream_head(c, e);
        if (head < 0 || (head > 0 && stream_set_cursor(c, CONTACT_CONSUMER, head, e) < 0))
            return -1;
    }
    atomic_store(&W.stop, 0);
    if (pthread_create(&W.thread, NULL, worker, NULL) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the contact worker");
    W.started = 1;
    return 0;
}

void contact_stop(void)
{
    if (W.started) {
        atomic_store(&W.stop, 1);
        nudge_wake_all();
        pthread_join(W.thread, NULL);
        W.started = 0;
    }
    contact_queue_shutdown();
    contact_events_reset();
}
