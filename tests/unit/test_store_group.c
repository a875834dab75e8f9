/* test_store_group.c: store/group.h on real SQLite: units of one batch commit together, a
 * failing unit is undone alone, a failed COMMIT answers every unit of its batch with an
 * error and stores nothing, rerunnable units share a savepoint and are redone exactly when
 * one fails, the WAL restarts under continuous writes, urgent units run first, stop runs what is
 * queued. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "store/group.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char root[64];
    store_t *store;
    store_group_t *g;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    sem_t gate;
} fx_t;

typedef struct {
    store_unit_t u;
    fx_t *f;
    const char *sql; /* run: this statement, then fail if fail is set */
    int fail;
    int gate; /* run: wait for f->gate first */
    int rc;
    err_t err;
    int called;
    int order;              /* when it ran, counted from 1 */
    int runs;               /* how many times run was called */
    const char *undone_sql; /* run: then this in a nested level it rolls back, and go on */
} unit_t;

static int ran; /* units run so far (writer thread) */

static int run_unit(store_conn_t *c, store_unit_t *su, err_t *e)
{
    unit_t *u = su->arg;
    if (u->gate) sem_wait(&u->f->gate);
    u->order = ++ran;
    u->runs++;
    if (u->sql && store_exec(c, e, u->sql, "") < 0) return -1;
    if (u->undone_sql) {
        if (store_begin(c, e) < 0) return -1;
        if (store_exec(c, e, u->undone_sql, "") < 0) return -1;
        store_rollback(c);
    }
    if (u->fail) return err_set(e, ERR_INVALID_ARGUMENT, "unit refused");
    return 0;
}

static void done_unit(store_unit_t *su, int rc, const err_t *e)
{
    unit_t *u = su->arg;
    u->rc = rc;
    u->err = *e;
    u->called++;
    pthread_mutex_lock(&u->f->lock);
    u->f->done++;
    pthread_cond_signal(&u->f->cond);
    pthread_mutex_unlock(&u->f->lock);
}

static void unit_init(unit_t *u, fx_t *f, const char *sql)
{
    memset(u, 0, sizeof *u);
    u->u.run = run_unit;
    u->u.done = done_unit;
    u->u.arg = u;
    u->f = f;
    u->sql = sql;
    u->rc = 99;
}

static void wait_done(fx_t *f, int n)
{
    pthread_mutex_lock(&f->lock);
    while (f->done < n)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static int64_t count(fx_t *f, const char *sql)
{
    err_t e;
    return fx_count(store_conn(f->store, &e), sql);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    store_conn_t *c = NULL;
    if (fx_tmpdir(f->root, "group") < 0 || !(f->store = fx_store_open(f->root, &c))) return -1;
    err_t e;
    if (store_exec_script(c,
                          "CREATE TABLE p (id INTEGER PRIMARY KEY);"
                          "CREATE TABLE t (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) "
                          "DEFERRABLE INITIALLY DEFERRED);"
                          "INSERT INTO p VALUES (1);",
                          &e) < 0)
        return -1;
    store_group_opts_t go = {.max_batch = 64};
    f->g = store_group_start(f->store, &go, &e);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    sem_init(&f->gate, 0, 0);
    *state = f;
    return f->g ? 0 : -1;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_group_stop(f->g);
    store_close(f->store);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    sem_destroy(&f->gate);
    int rc = fx_rmdir(f->root);
    free(f);
    return rc;
}

/* A gate unit holds the writer while the others queue, so they form one batch. */
static void submit_batch(fx_t *f, unit_t *gate, unit_t *units, int n)
{
    unit_init(gate, f, NULL);
    gate->gate = 1;
    assert_int_equal(store_group_submit(f->g, &gate->u), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(store_group_submit(f->g, &units[i].u), 0);
    sem_post(&f->gate);
    wait_done(f, n + 1);
}

static void test_batch_commits_together(void **state)
{
    fx_t *f = *state;
    unit_t gate, u[3];
    unit_init(&u[0], f, "INSERT INTO t (id, p) VALUES (1, 1)");
    unit_init(&u[1], f, "INSERT INTO t (id, p) VALUES (2, 1)");
    unit_init(&u[2], f, "INSERT INTO t (id, p) VALUES (3, 1)");
    store_group_stats_t before, after;
    store_group_stats(&before);
    submit_batch(f, &gate, u, 3);
    store_group_stats(&after);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(u[i].rc, 0);
        assert_int_equal(u[i].called, 1);
    }
    /* The three queued while the gate ran: one batch with it, or one after it. */
    assert_in_range(after.batches - before.batches, 1, 2);
    assert_int_equal(after.units - before.units, 4);
    assert_int_equal(count(f, "SELECT count(*) FROM t"), 3);
}

static void test_failing_unit_is_undone_alone(void **state)
{
    fx_t *f = *state;
    unit_t gate, u[3];
    unit_init(&u[0], f, "INSERT INTO t (id, p) VALUES (10, 1)");
    unit_init(&u[1], f, "INSERT INTO t (id, p) VALUES (11, 1)");
    u[1].fail = 1; /* wrote, then refused: its insert must go */
    unit_init(&u[2], f, "INSERT INTO t (id, p) VALUES (10, 1)"); /* duplicate of u[0] */
    unit_t last;
    unit_init(&last, f, "INSERT INTO t (id, p) VALUES (12, 1)");
    unit_t all[4] = {u[0], u[1], u[2], last};
    for (int i = 0; i < 4; i++)
        all[i].u.arg = &all[i];
    submit_batch(f, &gate, all, 4);
    assert_int_equal(all[0].rc, 0);
    assert_int_equal(all[1].rc, -1);
    assert_int_equal(all[1].err.code, ERR_INVALID_ARGUMENT);
    assert_string_equal(all[1].err.message, "unit refused");
    assert_int_equal(all[2].rc, -1);
    assert_int_equal(all[2].err.code, ERR_ALREADY_EXISTS);
    assert_int_equal(all[3].rc, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id IN (10, 12)"), 2);
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id = 11"), 0);
}

/* Rerunnable units share one savepoint; a failure (or a rollback inside one that then goes
 * on) redoes their stretch one savepoint each: the outcomes are those of the exact path. */
static void test_rerunnable_stretch_redone_on_failure(void **state)
{
    fx_t *f = *state;
    unit_t gate, u[6];
    unit_init(&u[0], f, "INSERT INTO t (id, p) VALUES (30, 1)");
    unit_init(&u[1], f, "INSERT INTO t (id, p) VALUES (31, 1)");
    u[1].undone_sql = "INSERT INTO t (id, p) VALUES (32, 1)";
    unit_init(&u[2], f, "INSERT INTO t (id, p) VALUES (33, 1)");
    unit_init(&u[3], f, "INSERT INTO t (id, p) VALUES (34, 1)");
    unit_init(&u[4], f, "INSERT INTO t (id, p) VALUES (35, 1)");
    u[4].fail = 1;
    unit_init(&u[5], f, "INSERT INTO t (id, p) VALUES (36, 1)");
    for (int i = 0; i < 6; i++)
        u[i].u.rerun = i != 2; /* u[2] may run once only: it ends the first stretch */
    submit_batch(f, &gate, u, 6);
    int want_rc[6] = {0, 0, 0, 0, -1, 0}, want_runs[6] = {2, 2, 1, 2, 2, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(u[i].rc, want_rc[i]);
        assert_int_equal(u[i].called, 1);
        assert_int_equal(u[i].runs, want_runs[i]);
    }
    assert_string_equal(u[4].err.message, "unit refused");
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id IN (30, 31, 33, 34, 36)"), 5);
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id IN (32, 35)"), 0);
}

static void test_failed_commit_answers_every_unit(void **state)
{
    fx_t *f = *state;
    unit_t gate, u[2];
    unit_init(&u[0], f, "INSERT INTO t (id, p) VALUES (20, 1)");
    /* A deferred foreign key is checked at COMMIT only: the whole batch's COMMIT fails. */
    unit_init(&u[1], f, "INSERT INTO t (id, p) VALUES (21, 999)");
    store_group_stats_t before, after;
    store_group_stats(&before);
    submit_batch(f, &gate, u, 2);
    store_group_stats(&after);
    assert_int_equal(after.failed_commits - before.failed_commits, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(u[i].rc, -1);
        assert_int_equal(u[i].err.code, ERR_UNAVAILABLE);
        assert_non_null(strstr(u[i].err.message, "nothing was saved"));
    }
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id IN (20, 21)"), 0);
    /* The writer goes on: the next batch commits. */
    unit_t next;
    unit_init(&next, f, "INSERT INTO t (id, p) VALUES (22, 1)");
    assert_int_equal(store_group_submit(f->g, &next.u), 0);
    wait_done(f, 4);
    assert_int_equal(next.rc, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id = 22"), 1);
}

/* A writer that never pauses: a background checkpoint alone never empties the WAL, so it
 * would never restart and would grow by every page written. The writer settles it between
 * batches, and the WAL restarts. */
static void test_wal_restarts_under_continuous_writes(void **state)
{
    fx_t *f = *state;
    /* a store of its own with a small threshold: 64 pages (256 KiB) */
    store_group_stop(f->g);
    store_close(f->store);
    err_t e;
    store_opts_t o = {.wal_pages = 64};
    f->store = store_open(f->root, &o, &e);
    assert_non_null(f->store);
    assert_int_equal(store_exec_script(store_conn(f->store, &e),
                                       "CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB)", &e),
                     0);
    store_group_opts_t go = {.max_batch = 32};
    f->g = store_group_start(f->store, &go, &e);
    assert_non_null(f->g);
    enum { N = 3000 }; /* 3000 pages and more: about 12 MiB of WAL if it never restarted */
    unit_t *u = calloc(N, sizeof *u);
    for (int i = 0; i < N; i++) {
        unit_init(&u[i], f, "INSERT INTO b (x) VALUES (randomblob(3000))");
        assert_int_equal(store_group_submit(f->g, &u[i].u), 0);
    }
    wait_done(f, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(u[i].rc, 0);
    free(u);
    assert_int_equal(count(f, "SELECT count(*) FROM b"), N);
    char wal[128];
    snprintf(wal, sizeof wal, "%s/parley.db-wal", f->root);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    /* Never restarted, it would hold every page written (more than 12 MiB); restarted, it
     * stays far smaller, by how much depends on when the checkpointer got the CPU. */
    if (st.st_size > 9 * 1024 * 1024)
        fail_msg("the WAL grew to %lld bytes for %d pages written", (long long)st.st_size, N);
}

static void test_urgent_units_go_first(void **state)
{
    fx_t *f = *state;
    unit_t gate, u[4];
    unit_init(&gate, f, NULL);
    gate.gate = 1;
    assert_int_equal(store_group_submit(f->g, &gate.u), 0);
    usleep(50000); /* the writer takes the gate alone and waits in it */
    for (int i = 0; i < 4; i++) {
        unit_init(&u[i], f, NULL);
        u[i].u.urgent = i >= 2; /* queued last, run first, in their own order */
        assert_int_equal(store_group_submit(f->g, &u[i].u), 0);
    }
    sem_post(&f->gate);
    wait_done(f, 5);
    assert_true(u[2].order < u[3].order);
    assert_true(u[3].order < u[0].order);
    assert_true(u[0].order < u[1].order);
}

static void test_stop_runs_what_is_queued(void **state)
{
    fx_t *f = *state;
    enum { N = 50 };
    unit_t *u = calloc(N, sizeof *u);
    char sql[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(sql[i], sizeof sql[i], "INSERT INTO t (id, p) VALUES (%d, 1)", 100 + i);
        unit_init(&u[i], f, sql[i]);
        assert_int_equal(store_group_submit(f->g, &u[i].u), 0);
    }
    store_group_stop(f->g);
    f->g = NULL;
    for (int i = 0; i < N; i++)
        assert_int_equal(u[i].rc, 0);
    assert_int_equal(f->done, N);
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id >= 100"), N);
    free(u);
}

/* store_group_call waits for the batch: committed (0) or the unit's own error (-1). */
static void test_call_waits_for_the_outcome(void **state)
{
    fx_t *f = *state;
    unit_t ok, bad;
    unit_init(&ok, f, "INSERT INTO t VALUES (21, 1)");
    ok.u.done = NULL;
    err_t e;
    assert_int_equal(store_group_call(f->g, &ok.u, &e), 0);
    assert_int_equal(ok.runs, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id = 21"), 1); /* committed */
    unit_init(&bad, f, "INSERT INTO t VALUES (22, 1)");
    bad.u.done = NULL;
    bad.fail = 1;
    assert_int_equal(store_group_call(f->g, &bad.u, &e), -1);
    assert_string_equal(e.message, "unit refused");
    assert_int_equal(count(f, "SELECT count(*) FROM t WHERE id = 22"), 0); /* undone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_commits_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_unit_is_undone_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rerunnable_stretch_redone_on_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_answers_every_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_restarts_under_continuous_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgent_units_go_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_runs_what_is_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_waits_for_the_outcome, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
