/* convapi.c: the "flows" stream consumer (see convapi.h for the delivery guarantee).
 * MESSAGE_INBOUND first resumes the conversation waiting for that contact on that app (a
 * sinch-send with "await response"), else starts the sinch-received-message nodes of the
 * project (each filters by its app); every conversation event also goes to the
 * sinch-events nodes, which filter by trigger. Conversations handed over to the contact
 * center (contact-handover) start nothing until CONVERSATION_STOP/DELETE or a
 * CONTACT_HANDBACK event. The consumer runs its own loop (not stream_consumer_start) so it
 * can post the inbox rows of a batch right after that batch commits. */
#include "flows/convapi.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/nudge.h"
#include "base/ulid.h"
#include "flows/flows.h"
#include "stream/stream.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONSUMER FLOWS_CONSUMER

/* ---- camelCase (Sinch's keysToCamel) ---- */

static char *camel_key(const char *k)
{
    size_t n = strlen(k);
    char *o = xmalloc(n + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        if ((k[i] == '_' || k[i] == '-') && i + 1 < n && isalpha((unsigned char)k[i + 1])) {
            *p++ = (char)toupper((unsigned char)k[++i]);
        } else {
            *p++ = k[i];
        }
    }
    *p = 0;
    return o;
}

json_t *flows_sinch_camel(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            char *ck = camel_key(k);
            json_object_set_new(o, ck, flows_sinch_camel(x));
            free(ck);
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, flows_sinch_camel(x));
        return a;
    }
    return json_deep_copy(v);
}

/* ---- inbox items ----
 * Each posted row is an origin (node.h): the row stays until the work of its message is
 * done, or goes inside the transaction of the first message a sinch-send sends for it. */

struct flows_inbox_item {
    json_t *msg;
};

static store_t *g_store;

static void row_delete(const char *id)
{
    err_t e = {0};
    store_conn_t *c = g_store ? store_conn(g_store, &e) : NULL;
    if (!c || store_exec(c, &e, "DELETE FROM flows_inbox WHERE id = $1", "s", id) < 0)
        log_kv(LOG_WARN, "flows inbox delete failed", "id", id, "error", e.message);
}

static int row_settle(void *ud, store_conn_t *c, err_t *e)
{
    return store_exec(c, e, "DELETE FROM flows_inbox WHERE id = $1", "s", (const char *)ud) < 0 ? -1
                                                                                                : 0;
}

static void row_release(void *ud, int settled, int kept)
{
    if (!settled && !kept) row_delete(ud); /* done, or no longer deployed: taken */
    free(ud);
}

static const flows_origin_hooks_t row_hooks = {.settle = row_settle, .release = row_release};

json_t *flows_inbox_msg(flows_inbox_item_t *it)
{
    return it->msg;
}

static void item_free(void *arg)
{
    flows_inbox_item_t *it = arg;
    json_decref(it->msg);
    free(it);
}

void flows_inbox_item_done(flows_inbox_item_t *it)
{
    item_free(it);
}

static atomic_int g_stop;

/* Post one inbox row to its nodes. */
static void pump_row(const char *id, const char *project, const char *kind, const char *node_id,
                     json_t *msg)
{
    json_t *targets;
    flows_task_fn fn;
    if (strcmp(kind, "resume") == 0) {
        targets = json_pack("[s]", node_id);
        fn = flows_sinch_deliver_resume;
    } else if (strcmp(kind, "event") == 0) {
        targets = flows_nodes_of_type(project, "sinch-events");
        fn = flows_sinch_deliver_event;
    } else {
        targets = flows_nodes_of_type(project, "sinch-received-message");
        fn = flows_sinch_deliver_inbound;
    }
    size_t n = json_array_size(targets);
    if (n == 0) {
        row_delete(id);
        json_decref(targets);
        return;
    }
    flows_origin_t *o = flows_origin_new(&row_hooks, xstrdup(id));
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        flows_inbox_item_t *it = xcalloc(1, sizeof *it);
        it->msg = i + 1 == n ? json_incref(msg) : json_deep_copy(msg);
        flows_post_from(o, project, json_string_value(t), fn, it, item_free);
    }
    flows_origin_drop(o);
    json_decref(targets);
}

/* Rows written by the batch in progress (posted after its commit). */
typedef struct {
    json_t *rows; /* [[id, project, kind, node_id, msg], ...] */
    size_t mark;  /* rows before the current event (a failed event's rows are dropped) */
} batch_t;

static int inbox_add(store_conn_t *c, batch_t *b, const char *project, const char *kind,
                     const char *node_id, json_t *msg, err_t *e)
{
    char id[ULID_LEN + 1];
    ulid_new(id);
    char *text = json_dumps(msg, JSON_COMPACT);
    int64_t rc = store_exec(c, e,
                            "INSERT INTO flows_inbox (id, project_id, kind, node_id, msg, "
                            "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                            "sssssi", id, project, kind, node_id, text, clock_now_ms());
    free(text);
    if (rc < 0) return -1;
    json_array_append_new(b->rows, json_pack("[s,s,s,s,O]", id, project, kind, node_id, msg));
    return 0;
}

static int str_in(json_t *arr, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i,
                       x) if (json_is_string(x) && strcmp(json_string_value(x), s) == 0) return 1;
    return 0;
}

/* The msg a sinch-received-message node sends for an inbound message (Sinch's shape). */
static json_t *inbound_msg(const json_t *payload)
{
    json_t *body = flows_sinch_camel(payload);
    json_t *m = json_object_get(body, "message");
    json_t *cm = json_object_get(m, "contactMessage");
    json_t *msg = json_object();
    json_t *pl = NULL;
    json_t *media = json_object_get(cm, "mediaMessage"), *text = json_object_get(cm, "textMessage");
    if (json_is_string(json_object_get(media, "url")))
        pl = json_object_get(media, "url");
    else if (json_is_string(json_object_get(text, "text")))
        pl = json_object_get(text, "text");
    else if (json_object_get(cm, "choiceResponseMessage"))
        pl = json_object_get(cm, "choiceResponseMessage");
    else if (json_object_get(cm, "locationMessage"))
        pl = json_object_get(cm, "locationMessage");
    else
        pl = cm;
    json_object_set(msg, "payload", pl ? pl : json_null());
    json_t *ci = json_object_get(m, "channelIdentity");
    json_t *contact = json_object();
    json_object_set_new(contact, "channelIdentities", ci ? json_pack("[O]", ci) : json_array());
    if (json_object_get(m, "contactId"))
        json_object_set(contact, "contactId", json_object_get(m, "contactId"));
    json_object_set_new(msg, "contact", contact);
    json_object_set_new(msg, "variables", json_object());
    const char *md = json_string_value(json_object_get(m, "metadata"));
    if (md && *md) {
        json_t *mdj = json_loads(md, JSON_DECODE_ANY, NULL);
        json_object_set_new(msg, "messageMetadata", mdj ? mdj : json_string(md));
    }
    json_t *cmd = json_object_get(body, "conversationMetadata");
    if (cmd) json_object_set(msg, "conversationMetadata", cmd);
    json_object_set_new(msg, "lastResponse", body);
    return msg;
}

static const char *notification_key(const json_t *payload)
{
    static const char *const envelope[] = {"app_id",           "project_id",
                                           "accepted_time",    "event_time",
                                           "message_metadata", "conversation_metadata",
                                           "correlation_id",   NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)payload, k, v)
    {
        int env = 0;
        for (int i = 0; envelope[i]; i++)
            env |= strcmp(k, envelope[i]) == 0;
        if (!env && json_is_object(v)) return k;
    }
    return NULL;
}

static int handle_inbound(store_conn_t *c, batch_t *b, const stream_event_t *ev, err_t *e)
{
    json_t *m = json_object_get(stream_event_payload(ev), "message");
    const char *contact = json_string_value(json_object_get(m, "contact_id"));
    const char *conv = json_string_value(json_object_get(m, "conversation_id"));
    const char *app = ev->app_id;
    if (conv && *conv) { /* handed over to the contact center: not ours */
        store_stmt_t *st = store_query(
            c, e, "SELECT 1 FROM flows_handovers WHERE project_id = $1 AND conversation_id = $2",
            "ss", ev->project_id, conv);
        if (!st) return -1;
        int rc = store_step(st, e);
        store_done(st);
        if (rc < 0) return -1;
        if (rc == 1) return 0;
    }
    json_t *msg = inbound_msg(stream_event_payload(ev));
    int rc = 0, resumed = 0;
    if (contact && *contact) {
        store_stmt_t *st = store_query(c, e,
                                       "SELECT id, node_id, msg FROM flows_waits WHERE project_id "
                                       "= $1 AND app_id = $2 AND contact_id = $3",
                                       "sss", ev->project_id, app, contact);
        if (!st) {
            json_decref(msg);
            return -1;
        }
        char wid[ULID_LEN + 1] = "", node[256] = "";
        json_t *saved = NULL;
        if ((rc = store_step(st, e)) == 1) {
            snprintf(wid, sizeof wid, "%s", store_col_text(st, 0));
            snprintf(node, sizeof node, "%s", store_col_text(st, 1));
            saved = json_loads(store_col_text(st, 2), 0, NULL);
        }
        store_done(st);
        if (rc < 0) {
            json_decref(msg);
            return -1;
        }
        if (wid[0]) {
            if (store_exec(c, e, "DELETE FROM flows_waits WHERE id = $1", "s", wid) < 0) {
                json_decref(saved);
                json_decref(msg);
                return -1;
            }
            json_t *senders = flows_nodes_of_type(ev->project_id, "sinch-send");
            if (json_is_object(saved) && str_in(senders, node)) {
                /* continue with the saved msg: the answer replaces the conversation fields */
                json_object_del(saved, "message");
                json_object_del(saved, "error");
                static const char *const keys[] = {
                    "payload",         "lastResponse",         "contact",
                    "messageMetadata", "conversationMetadata", NULL};
                for (int i = 0; keys[i]; i++) {
                    json_t *v = json_object_get(msg, keys[i]);
                    if (v)
                        json_object_set(saved, keys[i], v);
                    else
                        json_object_del(saved, keys[i]);
                }
                json_object_set_new(saved, "_flowsWait", json_string(wid));
                rc = inbox_add(c, b, ev->project_id, "resume", node, saved, e);
                resumed = 1;
            }
            json_decref(senders);
            json_decref(saved);
        }
    }
    if (!resumed && rc >= 0) rc = inbox_add(c, b, ev->project_id, "inbound", "", msg, e);
    json_decref(msg);
    return rc < 0 ? -1 : 0;
}

static int handler(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    batch_t *b = ud;
    b->mark = json_array_size(b->rows);
    int rc = 0;
    const char *kind = ev->kind;
    if (strcmp(kind, "CONTACT_HANDOVER") == 0) return 0; /* ours, for the contact center */
    if (strcmp(kind, "CONVERSATION_STOP") == 0 || strcmp(kind, "CONVERSATION_DELETE") == 0 ||
        strcmp(kind, "CONTACT_HANDBACK") == 0) {
        json_t *conv = json_object_get(stream_event_payload(ev), "conversation");
        const char *id = json_string_value(json_object_get(conv, "id"));
        if (!id)
            id = json_string_value(json_object_get(stream_event_payload(ev), "conversation_id"));
        if (id && store_exec(c, e,
                             "DELETE FROM flows_handovers WHERE project_id = $1 AND "
                             "conversation_id = $2",
                             "ss", ev->project_id, id) < 0)
            rc = -1;
    }
    if (rc == 0 && strcmp(kind, "MESSAGE_INBOUND") == 0) rc = handle_inbound(c, b, ev, e);
    if (rc == 0) { /* the project's sinch-events nodes, if any, before reading the payload */
        json_t *evs = flows_nodes_of_type(ev->project_id, "sinch-events");
        if (json_array_size(evs) && notification_key(stream_event_payload(ev))) {
            json_t *msg = flows_sinch_camel(stream_event_payload(ev));
            json_object_set_new(msg, "_flowsTrigger", json_string(kind));
            rc = inbox_add(c, b, ev->project_id, "event", "", msg, e);
            json_decref(msg);
        }
        json_decref(evs);
    }
    if (rc < 0) { /* the savepoint rolls back: forget this event's rows */
        while (json_array_size(b->rows) > b->mark)
            json_array_remove(b->rows, json_array_size(b->rows) - 1);
    }
    return rc;
}

static void pump_rows(json_t *rows)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        pump_row(json_string_value(json_array_get(r, 0)), json_string_value(json_array_get(r, 1)),
                 json_string_value(json_array_get(r, 2)), json_string_value(json_array_get(r, 3)),
                 json_array_get(r, 4));
    }
}

/* At start: everything committed but not yet taken (a crash or a stop in between). */
static int pump_pending(store_conn_t *c, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT id, project_id, kind, node_id, msg FROM flows_inbox ORDER BY id", "");
    if (!st) return -1;
    json_t *rows = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        json_t *msg = json_loads(store_col_text(st, 4), 0, NULL);
        if (!msg) msg = json_object();
        json_array_append_new(rows,
                              json_pack("[s,s,s,s,o]", store_col_text(st, 0), store_col_text(st, 1),
                                        store_col_text(st, 2), store_col_text(st, 3), msg));
    }
    store_done(st);
    if (rc == 0) pump_rows(rows);
    json_decref(rows);
    return rc;
}

static pthread_t g_thread;
static int g_running;

/* Wait until the runtime has applied the sets flows_start queued: a task posted to each
 * deployed project runs (or is dropped) only after the deploy queued before it. */
static pthread_mutex_t bar_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bar_cv = PTHREAD_COND_INITIALIZER;
static int bar_left;

static void bar_signal(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bar_mu);
    bar_left--;
    pthread_cond_broadcast(&bar_cv);
    pthread_mutex_unlock(&bar_mu);
}

static void bar_task(flows_node_t *n, void *arg)
{
    (void)n;
    bar_signal(arg);
}

static void wait_loaded(store_conn_t *c)
{
    err_t e = {0};
    store_stmt_t *st = store_query(c, &e, "SELECT project_id FROM flows_deployed", "");
    if (!st) return;
    json_t *ps = json_array();
    while (store_step(st, &e) == 1)
        json_array_append_new(ps, json_string(store_col_text(st, 0)));
    store_done(st);
    pthread_mutex_lock(&bar_mu);
    bar_left = (int)json_array_size(ps);
    pthread_mutex_unlock(&bar_mu);
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p)
        flows_post(json_string_value(p), "", bar_task, &bar_left, bar_signal);
    json_decref(ps);
    int64_t until = clock_now_ms() + 10000;
    pthread_mutex_lock(&bar_mu);
    while (bar_left > 0 && clock_now_ms() < until && !atomic_load(&g_stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&bar_cv, &bar_mu, &ts);
    }
    pthread_mutex_unlock(&bar_mu);
}

static void *consumer_main(void *arg)
{
    (void)arg;
    unsigned long seen = 0;
    err_t e = {0};
    store_conn_t *c = store_conn(g_store, &e);
    if (c) wait_loaded(c);
    if (c && pump_pending(c, &e) < 0)
        log_kv(LOG_WARN, "flows inbox replay failed", "error", e.message);
    while (!atomic_load(&g_stop)) {
        batch_t b = {.rows = json_array()};
        int n = stream_consume_in(g_store, CONSUMER, NULL, handler, &b, 200, &e);
        if (n < 0)
            log_kv(LOG_WARN, "flows consumer failed", "error", e.message);
        else
            pump_rows(b.rows);
        json_decref(b.rows);
        if (n <= 0) nudge_wait(&seen, 200);
    }
    return NULL;
}

int flows_convapi_start(store_t *s, err_t *e)
{
    g_store = s;
    store_conn_t *c = store_conn(s, e);
    if (!c) return -1;
    /* a new consumer does not replay history (no hello-world answers to old messages) */
    int64_t cur = stream_cursor(c, CONSUMER, e);
    if (cur < 0) return -1;
    if (cur == 0) {
        int64_t head = stream_head(c, e);
        if (head < 0 || stream_set_cursor(c, CONSUMER, head, e) < 0) return -1;
    }
    atomic_store(&g_stop, 0);
    if (pthread_create(&g_thread, NULL, consumer_main, NULL) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the flows stream consumer");
    g_running = 1;
    return 0;
}

void flows_convapi_stop(void)
{
    if (!g_running) return;
    atomic_store(&g_stop, 1);
    nudge_wake_all();
    pthread_join(g_thread, NULL);
    g_running = 0;
}
