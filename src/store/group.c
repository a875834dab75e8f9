/* group.c: the group-commit writer (see group.h). A mutex-protected FIFO feeds one thread;
 * the thread takes everything queued (up to max_batch) at once, so the batch size follows
 * the load: one unit when idle (no added latency), many while the previous commit ran. */
#define _GNU_SOURCE
#include "store/group.h"
#include "base/log.h"
#include "base/buf.h"
#include "base/nudge.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

struct store_group {
    store_t *store;
    int max_batch;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    store_unit_t *head, *tail;
    store_unit_t *last_urgent; /* the urgent units are the queue's first ones */
    int stopping;
};

static atomic_uint_fast64_t g_batches, g_units, g_failed_commits;

void store_group_stats(store_group_stats_t *out)
{
    out->batches = atomic_load(&g_batches);
    out->units = atomic_load(&g_units);
    out->failed_commits = atomic_load(&g_failed_commits);
}

/* One unit in its own savepoint: its rc and err. */
static void run_one(store_conn_t *c, store_unit_t *u)
{
    err_clear(&u->err);
    u->rc = store_begin(c, &u->err);
    if (u->rc == 0) {
        u->rc = u->run(c, u, &u->err) < 0 ? -1 : 0;
        if (u->rc < 0)
            store_rollback(c);
        else if (store_commit(c, &u->err) < 0)
            u->rc = -1;
    }
}

/* Units from..upto of a stretch that was rolled back: each again, one savepoint each. */
static void run_each(store_conn_t *c, store_unit_t *from, store_unit_t *upto)
{
    for (store_unit_t *v = from;; v = v->next) {
        run_one(c, v);
        if (v == upto) break;
    }
}

/* The stretch from..upto (rerunnable units run with elided savepoints) failed at upto:
 * roll the stretch back and run each of its units again. */
static void redo_stretch(store_conn_t *c, store_unit_t *from, store_unit_t *upto)
{
    store_elide_savepoints(c, 0);
    store_rollback(c); /* the stretch's savepoint */
    run_each(c, from, upto);
}

/* Close the open stretch (if any): release its savepoint. Should RELEASE fail (it does no
 * I/O), it has rolled the stretch back: run each unit again. */
static void end_stretch(store_conn_t *c, store_unit_t **from, store_unit_t *last)
{
    if (!*from) return;
    store_elide_savepoints(c, 0);
    err_t e;
    if (store_commit(c, &e) < 0) run_each(c, *from, last);
    *from = NULL;
}

/* One batch: BEGIN, the units (each in a savepoint, or a stretch of rerunnable ones in one
 * savepoint), COMMIT, then the outcomes. */
static void run_batch(store_conn_t *c, store_unit_t *batch, const err_t *conn_err)
{
    err_t e;
    int open = c && store_begin(c, &e) == 0;
    if (!c) e = *conn_err;
    store_unit_t *from = NULL, *prev = NULL; /* the open stretch: its first unit */
    for (store_unit_t *u = batch; u; prev = u, u = u->next) {
        if (!open) {
            u->rc = -1;
            u->err = e;
            continue;
        }
        if (!u->rerun) {
            end_stretch(c, &from, prev);
            run_one(c, u);
            continue;
        }
        if (!from) {
            err_t se;
            if (store_begin(c, &se) < 0) {
                run_one(c, u);
                continue;
            }
            store_elide_savepoints(c, 1);
            from = u;
        }
        err_clear(&u->err);
        u->rc = u->run(c, u, &u->err) < 0 ? -1 : 0;
        if (u->rc < 0 || store_poisoned(c)) {
            redo_stretch(c, from, u);
            from = NULL;
        }
    }
    if (open) end_stretch(c, &from, prev);
    if (open && store_commit(c, &e) < 0) {
        atomic_fetch_add(&g_failed_commits, 1);
        log_kv(LOG_ERROR, "group commit failed; the batch is answered with errors", "error",
               e.message);
        for (store_unit_t *u = batch; u; u = u->next)
            if (u->rc == 0) {
                u->rc = -1;
                err_set(&u->err, ERR_UNAVAILABLE, "store commit failed (%s); nothing was saved",
                        e.message);
            }
    }
    nudge_flush(); /* the units' marked work is committed: wake the workers once */
    atomic_fetch_add(&g_batches, 1);
    for (store_unit_t *u = batch, *n; u; u = n) {
        n = u->next; /* done may free u */
        atomic_fetch_add(&g_units, 1);
        u->done(u, u->rc, &u->err);
    }
}

static void *writer(void *arg)
{
    store_group_t *g = arg;
    pthread_setname_np(pthread_self(), "parley-writer");
    err_t ce;
    store_conn_t *c = store_conn(g->store, &ce);
    /* The one connection whose page cache stays valid (every other connection's is dropped
     * at each of its commits): give it room for the hot indexes of a growing store. */
    if (c && store_exec_script(c, "PRAGMA cache_size=-65536", &ce) < 0)
        log_kv(LOG_WARN, "group writer: cannot grow its page cache", "error", ce.message);
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->head && !g->stopping)
            pthread_cond_wait(&g->cond, &g->lock);
        if (!g->head) break; /* stopping and drained */
        store_unit_t *batch = g->head, *last = batch;
        for (int n = 1; n < g->max_batch && last->next; n++)
            last = last->next;
        g->head = last->next;
        if (!g->head) g->tail = NULL;
        g->last_urgent = NULL; /* every urgent unit is in this batch or none was queued */
        for (store_unit_t *u = g->head; u && u->urgent; u = u->next)
            g->last_urgent = u;
        last->next = NULL;
        pthread_mutex_unlock(&g->lock);
        run_batch(c, batch, &ce);
        if (c) store_wal_settle(c);
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

store_group_t *store_group_start(store_t *s, const store_group_opts_t *o, err_t *e)
{
    store_group_t *g = xcalloc(1, sizeof *g);
    g->store = s;
    g->max_batch = o && o->max_batch > 0 ? o->max_batch : 256;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    sigset_t all, old; /* the writer takes no signals (main waits for them) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g->thread, NULL, writer, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&g->lock);
        pthread_cond_destroy(&g->cond);
        free(g);
        err_set(e, ERR_INTERNAL, "cannot start the group-commit writer");
        return NULL;
    }
    return g;
}

int store_group_submit(store_group_t *g, store_unit_t *u)
{
    u->next = NULL;
    pthread_mutex_lock(&g->lock);
    if (g->stopping) {
        pthread_mutex_unlock(&g->lock);
        return -1;
    }
    if (u->urgent) { /* after the urgent ones already queued, before the rest */
        store_unit_t **at = g->last_urgent ? &g->last_urgent->next : &g->head;
        u->next = *at;
        *at = u;
        if (!u->next) g->tail = u;
        g->last_urgent = u;
    } else {
        if (g->tail)
            g->tail->next = u;
        else
            g->head = u;
        g->tail = u;
    }
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;
} call_t;

static void call_done(store_unit_t *u, int rc, const err_t *e)
{
    (void)rc, (void)e; /* u->rc and u->err hold them */
    call_t *w = u->call;
    pthread_mutex_lock(&w->mu);
    w->finished = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_group_call(store_group_t *g, store_unit_t *u, err_t *e)
{
    call_t w = {.finished = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    u->done = call_done;
    /* cppcheck-suppress autoVariables ; w outlives its use: we wait for call_done below */
    u->call = &w;
    int rc;
    if (store_group_submit(g, u) < 0) {
        rc = 1;
    } else {
        pthread_mutex_lock(&w.mu);
        while (!w.finished)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = u->rc;
        if (rc < 0) *e = u->err;
    }
    u->call = NULL;
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

void store_group_stop(store_group_t *g)
{
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    g->stopping = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
}
