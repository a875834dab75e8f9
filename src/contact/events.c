/* events.c: the contact center's per-user event log (table contact_events), the durable
 * source of the real-time stream: every assignment, customer message, queue change,
 * delivery status and stats tick is a row written in the transaction that made it, so an
 * SSE client resuming with Last-Event-ID gets exactly what it missed. The newest published
 * id is kept in memory so that idle streams can tell "nothing new" without a query. */
#include "contact/contact.h"
#include "base/hash.h"
#include "contact/routing.h"

#include "base/clock.h"

#include "base/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static _Atomic int64_t g_head;
static void (*_Atomic g_notify)(void);

/* Newest published id per "project|user" ("project|*" for everyone, "project|" for any
 * user), so that a parked stream polled by a notify that is not for it skips its query. */
#define KEY_MAX 64
typedef struct {
    char key[KEY_MAX];
    int64_t id;
} latest_t;
static pthread_mutex_t g_latest_mu = PTHREAD_MUTEX_INITIALIZER;
static latest_t *g_latest;
static size_t g_latest_cap, g_latest_n;

/* This thread's events added since its last publish (freed when the thread exits). */
typedef struct {
    char project[27], user[27];
    int64_t id;
} pending_t;
typedef struct {
    pending_t *items;
    size_t n, cap;
} pending_list_t;
static pthread_key_t g_pending_key;
static pthread_once_t g_pending_once = PTHREAD_ONCE_INIT;

static void pending_free(void *p)
{
    pending_list_t *l = p;
    free(l->items);
    free(l);
}

static void pending_key_make(void)
{
    pthread_key_create(&g_pending_key, pending_free);
}

static pending_list_t *pending_list(void)
{
    pthread_once(&g_pending_once, pending_key_make);
    pending_list_t *l = pthread_getspecific(g_pending_key);
    if (!l) {
        l = xcalloc(1, sizeof *l);
        pthread_setspecific(g_pending_key, l);
    }
    return l;
}

static latest_t *latest_slot(const char *key, int create)
{
    if (create && (g_latest_n + 1) * 2 > g_latest_cap) {
        latest_t *old = g_latest;
        size_t oldcap = g_latest_cap;
        g_latest_cap = oldcap ? oldcap * 2 : 256;
        g_latest = xcalloc(g_latest_cap, sizeof *g_latest);
        g_latest_n = 0;
        for (size_t i = 0; i < oldcap; i++) {
            if (!old[i].key[0]) continue;
            latest_t *n = latest_slot(old[i].key, 1);
            n->id = old[i].id;
        }
        free(old);
    }
    if (!g_latest_cap) return NULL;
    size_t i = hash_str(key) & (g_latest_cap - 1);
    while (g_latest[i].key[0]) {
        if (strcmp(g_latest[i].key, key) == 0) return &g_latest[i];
        i = (i + 1) & (g_latest_cap - 1);
    }
    if (!create) return NULL;
    snprintf(g_latest[i].key, KEY_MAX, "%s", key);
    g_latest_n++;
    return &g_latest[i];
}

static void latest_raise(const char *project, const char *user, int64_t id)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s|%s", project, user);
    latest_t *l = latest_slot(key, 1);
    if (id > l->id) l->id = id;
}

void contact_events_on_publish(void (*fn)(void))
{
    atomic_store(&g_notify, fn);
}

int64_t contact_event_add(store_conn_t *c, const char *project_id, const char *user_id,
                          const char *kind, json_t *data, err_t *e)
{
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!text) {
        err_set(e, ERR_INTERNAL, "cannot encode a contact event");
        return -1;
    }
    store_stmt_t *st = store_query(c, e,
                                   "INSERT INTO contact_events (project_id, user_id, kind, data, "
                                   "created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                                   "ssssi", project_id, user_id, kind, text, clock_now_ms());
    free(text);
    if (!st) return -1;
    int64_t id = -1;
    if (store_step(st, e) == 1) id = store_col_int(st, 0);
    store_done(st);
    if (id < 0) return -1;
    pending_list_t *l = pending_list();
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    pending_t *p = &l->items[l->n++];
    snprintf(p->project, sizeof p->project, "%s", project_id);
    snprintf(p->user, sizeof p->user, "%s", user_id);
    p->id = id;
    return id;
}

void contact_events_publish(void)
{
    int64_t top = 0;
    pending_list_t *l = pending_list();
    if (l->n) {
        pthread_mutex_lock(&g_latest_mu);
        for (size_t i = 0; i < l->n; i++) {
            latest_raise(l->items[i].project, l->items[i].user, l->items[i].id);
            latest_raise(l->items[i].project, "", l->items[i].id);
            if (l->items[i].id > top) top = l->items[i].id;
        }
        pthread_mutex_unlock(&g_latest_mu);
        l->n = 0;
    }
    int64_t cur = atomic_load(&g_head);
    while (top > cur && !atomic_compare_exchange_weak(&g_head, &cur, top)) {
    }
    void (*fn)(void) = atomic_load(&g_notify);
    if (fn) fn();
}

int64_t contact_events_head(void)
{
    return atomic_load(&g_head);
}

int64_t contact_events_latest(const char *project_id, const char *user_id)
{
    char key[KEY_MAX];
    int64_t v = 0;
    pthread_mutex_lock(&g_latest_mu);
    snprintf(key, sizeof key, "%s|%s", project_id, user_id ? user_id : "");
    latest_t *l = latest_slot(key, 0);
    if (l) v = l->id;
    if (user_id && *user_id) {
        snprintf(key, sizeof key, "%s|*", project_id);
        l = latest_slot(key, 0);
        if (l && l->id > v) v = l->id;
    }
    pthread_mutex_unlock(&g_latest_mu);
    return v;
}

void contact_events_reset(void)
{
    pthread_mutex_lock(&g_latest_mu);
    free(g_latest);
    g_latest = NULL;
    g_latest_cap = g_latest_n = 0;
    pthread_mutex_unlock(&g_latest_mu);
}

void contact_events_seed(store_conn_t *c)
{
    err_t e;
    store_stmt_t *st = store_query(c, &e, "SELECT COALESCE(MAX(id), 0) FROM contact_events", "");
    if (st && store_step(st, &e) == 1) {
        int64_t v = store_col_int(st, 0), cur = atomic_load(&g_head);
        while (v > cur && !atomic_compare_exchange_weak(&g_head, &cur, v)) {
        }
    }
    store_done(st);
}

json_t *contact_events_since(store_conn_t *c, const char *project_id, const char *user_id,
                             int64_t after, int max, err_t *e)
{
    store_stmt_t *st =
        user_id && *user_id
            ? store_query(c, e,
                          "SELECT id, kind, data, created_at FROM contact_events WHERE "
                          "project_id = $1 AND user_id IN ($2, '*') AND id > $3 ORDER BY id "
                          "LIMIT $4",
                          "ssii", project_id, user_id, after, (int64_t)max)
            : store_query(c, e,
                          "SELECT id, kind, data, created_at FROM contact_events WHERE "
                          "project_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                          "sii", project_id, after, (int64_t)max);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        json_t *data = json_loads(store_col_text(st, 2), 0, NULL);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:o, s:I}", "id", (json_int_t)store_col_int(st, 0), "kind",
                           store_col_text(st, 1), "data", data ? data : json_object(), "created_at",
                           (json_int_t)store_col_int(st, 3)));
    }
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

int64_t contact_events_trim(store_conn_t *c, int64_t before_ms, err_t *e)
{
    return store_exec(c, e,
                      "DELETE FROM contact_events WHERE id IN (SELECT id FROM contact_events "
                      "WHERE created_at < $1 ORDER BY id LIMIT 5000)",
                      "i", before_ms);
}
