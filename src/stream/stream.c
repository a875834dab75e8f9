/* stream.c: the event stream's table, cursors and consumer threads (see stream.h). */
#include "stream/stream.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/nudge.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int stream_append(store_conn_t *c, const char *project_id, const char *app_id, const char *kind,
                  const char *payload, const char *actor, err_t *e)
{
    if (store_exec(c, e,
                   "INSERT INTO stream_events (project_id, app_id, kind, payload, actor, "
                   "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                   "sssssi", project_id, app_id ? app_id : "", kind, payload, actor ? actor : "",
                   clock_now_ms()) < 0)
        return -1;
    nudge_mark_stream();
    return 0;
}

int64_t stream_cursor(store_conn_t *c, const char *name, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e, "SELECT seq FROM stream_cursors WHERE consumer = $1", "s", name);
    if (!st) return -1;
    int rc = store_step(st, e);
    int64_t seq = rc == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    return rc < 0 ? -1 : seq;
}

int stream_set_cursor(store_conn_t *c, const char *name, int64_t seq, err_t *e)
{
    return store_exec(c, e,
                      "INSERT INTO stream_cursors (consumer, seq) VALUES ($1, $2) "
                      "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
                      "si", name, seq) < 0
               ? -1
               : 0;
}

int stream_cursors_prune(store_conn_t *c, const char *const known[], err_t *e)
{
    store_stmt_t *st = store_query(c, e, "SELECT consumer, seq FROM stream_cursors", "");
    if (!st) return -1;
    json_t *gone = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        const char *name = store_col_text(st, 0);
        int keep = 0;
        for (int i = 0; known[i] && !keep; i++)
            keep = strcmp(known[i], name) == 0;
        if (!keep)
            json_array_append_new(gone, json_pack("[s,I]", name, (json_int_t)store_col_int(st, 1)));
    }
    store_done(st);
    size_t i;
    json_t *g;
    json_array_foreach(gone, i, g)
    {
        if (rc < 0) break;
        const char *name = json_string_value(json_array_get(g, 0));
        char seq[32];
        snprintf(seq, sizeof seq, "%lld", (long long)json_integer_value(json_array_get(g, 1)));
        if (store_exec(c, e, "DELETE FROM stream_cursors WHERE consumer = $1", "s", name) < 0)
            rc = -1;
        else
            log_kv(LOG_WARN, "stream: dropped the cursor of a consumer this version does not have",
                   "consumer", name, "at_seq", seq);
    }
    int n = rc < 0 ? -1 : (int)json_array_size(gone);
    json_decref(gone);
    return n;
}

int64_t stream_head(store_conn_t *c, err_t *e)
{
    store_stmt_t *st = store_query(c, e, "SELECT COALESCE(MAX(seq), 0) FROM stream_events", "");
    if (!st) return -1;
    int rc = store_step(st, e);
    int64_t seq = rc == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    return rc < 0 ? -1 : seq;
}

json_t *stream_event_payload(const stream_event_t *ev)
{
    stream_event_t *m = (stream_event_t *)ev; /* the cache is the only mutable part */
    if (!m->parsed) {
        m->parsed = m->payload_text ? json_loads(m->payload_text, 0, NULL) : NULL;
        if (!m->parsed) m->parsed = json_object();
    }
    return m->parsed;
}

typedef struct {
    int64_t seq, created_at;
    char *project_id, *app_id, *kind, *actor, *payload;
    int passed; /* a kind the consumer does not take: only seq and kind are read */
} row_t;

static void rows_free(row_t *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].project_id);
        free(rows[i].app_id);
        free(rows[i].kind);
        free(rows[i].actor);
        free(rows[i].payload);
    }
    free(rows);
}

/* 1 if an event follows seq, 0 if not, -1 on error. */
static int stream_pending(store_conn_t *c, int64_t seq, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e, "SELECT 1 FROM stream_events WHERE seq > $1 LIMIT 1", "i", seq);
    if (!st) return -1;
    int rc = store_step(st, e);
    store_done(st);
    return rc;
}

/* 1 if kinds (NULL-terminated; NULL: every kind) has kind. */
static int wanted(const char *const *kinds, const char *kind)
{
    if (!kinds) return 1;
    for (; *kinds; kinds++)
        if (strcmp(*kinds, kind) == 0) return 1;
    return 0;
}

static int consume(store_conn_t *c, const char *name, const char *const *kinds,
                   stream_handler_fn fn, void *ud, int max, err_t *e)
{
    if (max <= 0) max = 100;
    /* Most wake-ups follow commits that appended nothing (a batch of sends): find that out
     * with two reads rather than a write transaction, which would take the store's write
     * lock from the writers on every commit. */
    int64_t seen = stream_cursor(c, name, e);
    int pending = seen < 0 ? -1 : stream_pending(c, seen, e);
    if (pending <= 0) return pending;
    if (store_begin(c, e) < 0) return -1;
    int64_t after = stream_cursor(c, name, e);
    if (after < 0) goto fail;
    /* Read the batch first: handlers run other statements on this connection. */
    store_stmt_t *st = store_query(c, e,
                                   "SELECT seq, project_id, app_id, kind, actor, payload, "
                                   "created_at FROM stream_events WHERE seq > $1 ORDER BY seq "
                                   "LIMIT $2",
                                   "ii", after, (int64_t)max);
    if (!st) goto fail;
    row_t *rows = xcalloc((size_t)max, sizeof *rows);
    int n = 0, rc;
    while (n < max && (rc = store_step(st, e)) == 1) {
        row_t *r = &rows[n++];
        r->seq = store_col_int(st, 0);
        r->kind = xstrdup(store_col_text(st, 3));
        r->passed = !wanted(kinds, r->kind);
        if (r->passed) continue; /* no copy, and below no savepoint and no call */
        r->project_id = xstrdup(store_col_text(st, 1));
        r->app_id = xstrdup(store_col_text(st, 2));
        r->actor = xstrdup(store_col_text(st, 4));
        r->payload = xstrdup(store_col_text(st, 5));
        r->created_at = store_col_int(st, 6);
    }
    store_done(st);
    if (rc < 0) {
        rows_free(rows, n);
        goto fail;
    }
    int64_t last = after;
    for (int i = 0; i < n; i++) {
        row_t *r = &rows[i];
        if (r->passed) {
            last = r->seq;
            continue;
        }
        stream_event_t ev = {.seq = r->seq,
                             .project_id = r->project_id,
                             .app_id = r->app_id,
                             .kind = r->kind,
                             .actor = r->actor,
                             .payload_text = r->payload,
                             .created_at = r->created_at};
        err_t he;
        err_clear(&he);
        if (store_begin(c, &he) < 0) {
            rows_free(rows, n);
            *e = he;
            goto fail;
        }
        int hrc = fn(c, &ev, ud, &he);
        json_decref(ev.parsed);
        if (hrc < 0) {
            store_rollback(c);
            if (he.code == ERR_UNAVAILABLE) break; /* retry from here next time */
            log_kv(LOG_WARN, "stream event skipped", "consumer", name, "kind", r->kind, "project",
                   r->project_id, "error", he.message);
        } else if (store_commit(c, &he) < 0) {
            rows_free(rows, n);
            *e = he;
            goto fail;
        }
        last = r->seq;
    }
    rows_free(rows, n);
    if (last > after && stream_set_cursor(c, name, last, e) < 0) goto fail;
    if (store_commit(c, e) < 0) return -1;
    nudge_mark(); /* handlers may have queued work for other workers: wake them... */
    if (!store_in_tx(c))
        nudge_flush(); /* ...once this is committed (a writer unit's batch
                          flushes after its own COMMIT) */
    return n;
fail:
    store_rollback(c);
    return -1;
}

int stream_consume(store_conn_t *c, const char *name, stream_handler_fn fn, void *ud, int max,
                   err_t *e)
{
    return consume(c, name, NULL, fn, ud, max, e);
}

int64_t stream_trim(store_conn_t *c, int64_t before_ms, int limit, err_t *e)
{
    return store_exec(c, e,
                      "DELETE FROM stream_events WHERE seq IN (SELECT seq FROM stream_events "
                      "WHERE created_at < $1 AND seq <= (SELECT COALESCE(MIN(seq), 0) FROM "
                      "stream_cursors) ORDER BY seq LIMIT $2)",
                      "ii", before_ms, (int64_t)limit);
}

int64_t stream_sweep(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    return stream_trim(c, now_ms - STREAM_KEEP_MS, limit, e);
}

static _Atomic(store_group_t *) g_writer;

void stream_use_writer(store_group_t *g)
{
    atomic_store(&g_writer, g);
}

typedef struct {
    store_unit_t unit;
    const char *name;
    const char *const *kinds;
    stream_handler_fn fn;
    void *ud;
    int max, n;
} consume_unit_t;

static int consume_run(store_conn_t *c, store_unit_t *u, err_t *e)
{
    consume_unit_t *cu = u->arg;
    cu->n = consume(c, cu->name, cu->kinds, cu->fn, cu->ud, cu->max, e);
    return cu->n < 0 ? -1 : 0;
}

int stream_consume_in(store_t *s, const char *name, const char *const *kinds, stream_handler_fn fn,
                      void *ud, int max, err_t *e)
{
    store_group_t *g = atomic_load(&g_writer);
    if (!g) {
        store_conn_t *c = store_conn(s, e);
        return c ? consume(c, name, kinds, fn, ud, max, e) : -1;
    }
    consume_unit_t cu = {
        .unit = {.run = consume_run}, .name = name, .kinds = kinds, .fn = fn, .ud = ud, .max = max};
    cu.unit.arg = &cu;
    int rc = store_group_call(g, &cu.unit, e);
    if (rc > 0) return err_set(e, ERR_UNAVAILABLE, "the store writer is stopping");
    return rc < 0 ? -1 : cu.n;
}

struct stream_consumer {
    store_t *store;
    char *name;
    const char *const *kinds;
    stream_handler_fn fn;
    void *ud;
    int poll_ms;
    atomic_int stop;
    pthread_t thread;
};

static void *consumer_main(void *arg)
{
    stream_consumer_t *sc = arg;
    unsigned long seen = 0;
    while (!atomic_load(&sc->stop)) {
        err_t e;
        int n = stream_consume_in(sc->store, sc->name, sc->kinds, sc->fn, sc->ud, 200, &e);
        if (n < 0)
            log_kv(LOG_WARN, "stream consumer failed", "consumer", sc->name, "error", e.message);
        if (n == 0 || n < 0) nudge_wait(&seen, sc->poll_ms);
    }
    return NULL;
}

stream_consumer_t *stream_consumer_start(store_t *s, const char *name, const char *const *kinds,
                                         stream_handler_fn fn, void *ud, int poll_ms, err_t *e)
{
    stream_consumer_t *sc = xcalloc(1, sizeof *sc);
    sc->store = s;
    sc->name = xstrdup(name);
    sc->kinds = kinds;
    sc->fn = fn;
    sc->ud = ud;
    sc->poll_ms = poll_ms > 0 ? poll_ms : 200;
    if (pthread_create(&sc->thread, NULL, consumer_main, sc) != 0) {
        free(sc->name);
        free(sc);
        err_set(e, ERR_INTERNAL, "cannot start stream consumer %s", name);
        return NULL;
    }
    return sc;
}

void stream_consumer_stop(stream_consumer_t *sc)
{
    if (!sc) return;
    atomic_store(&sc->stop, 1);
    nudge_wake_all();
    pthread_join(sc->thread, NULL);
    free(sc->name);
    free(sc);
}
