/* events.c: the contact center's per-user event log (table contact_events), the durable
 * source of the real-time stream: every assignment, customer message, queue change,
 * delivery status and stats tick is a row written in the transaction that made it, so an
 * SSE client resuming with Last-Event-ID gets exactly what it missed. The newest published
 * id is kept in memory so that idle streams can tell "nothing new" without a query. */
#include "contact/contact.h"
#include "contact/routing.h"

#include "base/clock.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic int64_t g_head;
static _Thread_local int64_t tl_pending;
static void (*_Atomic g_notify)(void);

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
    if (id > tl_pending) tl_pending = id;
    return id;
}

void contact_events_publish(void)
{
    int64_t p = tl_pending;
    int64_t cur = atomic_load(&g_head);
    while (p > cur && !atomic_compare_exchange_weak(&g_head, &cur, p)) {
    }
    void (*fn)(void) = atomic_load(&g_notify);
    if (fn) fn();
}

int64_t contact_events_head(void)
{
    return atomic_load(&g_head);
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
