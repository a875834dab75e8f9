/* group.h: group commit. One writer thread runs units of store work that many threads
 * submit, a batch of them in ONE transaction, each unit in its own savepoint, and reports
 * every unit's outcome only after the batch's COMMIT returned. SQLite pays one commit (WAL
 * append, lock hand-over) per batch instead of per unit, and the submitting threads do not
 * queue on the write lock: they hand the unit over and go on (e.g. an HTTP worker defers its
 * reply with http_defer and serves other connections meanwhile).
 *
 * Guarantees: a unit's done callback sees rc 0 only if its writes are committed; a unit
 * whose run fails is rolled back to its savepoint without touching the others; if the
 * batch's COMMIT fails, every unit of the batch gets rc -1 (ERR_UNAVAILABLE) and nothing of
 * the batch is stored. Units run in submission order.
 *
 * Memory: the submitter owns the unit (and arg); the group only links it until done has
 * been called, and never touches it afterwards. */
#ifndef PARLEY_STORE_GROUP_H
#define PARLEY_STORE_GROUP_H

#include "store/store.h"

typedef struct store_group store_group_t;
typedef struct store_unit store_unit_t;

struct store_unit {
    /* On the writer thread, inside the batch transaction and the unit's own savepoint: 0 to
     * keep its writes, -1 with e filled to undo them (the error is handed to done). May use
     * store_begin/commit (they nest) and nudge_mark (flushed after the commit). */
    int (*run)(store_conn_t *c, store_unit_t *u, err_t *e);
    /* On the writer thread, after the commit (rc 0) or a failure (rc -1, e says why). Must
     * not block; typically hands a reply back (http_complete). */
    void (*done)(store_unit_t *u, int rc, const err_t *e);
    void *arg;
    /* 1: run has no effect outside the transaction except what a later run of it replaces
     * (e.g. the reply it prepares), so it may run more than once. The group then runs a
     * stretch of such units in ONE savepoint with the units' own savepoints elided (see
     * store_elide_savepoints); when one fails, the stretch is rolled back and each unit of
     * it is run again in its own savepoint. Outcomes are the same; the common case is
     * cheaper. */
    int rerun;
    int urgent; /* 1: goes before the queued units that are not (e.g. the dispatcher's turn,
                   which a burst of sends must not hold up) */
    /* private to the group */
    store_unit_t *next;
    void *call; /* store_group_call's waiter */
    int rc;
    err_t err;
};

typedef struct {
    int max_batch; /* units per transaction (0 = 256) */
} store_group_opts_t;

store_group_t *store_group_start(store_t *s, const store_group_opts_t *o, err_t *e);
/* Queue u (run and done set). -1 when the group is stopping (u untouched). Any thread. */
int store_group_submit(store_group_t *g, store_unit_t *u);
/* Submit u and wait until its batch is done (u->done is the group's own: leave it NULL).
 * 0 if u's writes are committed; -1 with *e if its run or the COMMIT failed; 1 if the
 * group is stopping (u was not run: the caller may do the work on its own connection).
 * Never from the writer thread (a unit's run or done). */
int store_group_call(store_group_t *g, store_unit_t *u, err_t *e);
/* Run what is queued, then stop the thread and free g. Accepts NULL. */
void store_group_stop(store_group_t *g);

/* Process-wide counters for /metrics (Prometheus text appended to out by the caller). */
typedef struct {
    uint64_t batches, units, failed_commits;
} store_group_stats_t;
void store_group_stats(store_group_stats_t *out);

#endif
