/* test_stream.c: the event stream (stream/stream.h) on a real SQLite store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "base/nudge.h"
#include "store/store.h"
#include "stream/stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char root[64];
    store_t *store;
    store_conn_t *c;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->root, "stream") < 0 || !(f->store = fx_store_open(f->root, &f->c))) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->store);
    int rc = fx_rmdir(f->root);
    free(f);
    return rc;
}

static void append(fx_t *f, const char *kind, const char *payload)
{
    err_t e = {0};
    assert_int_equal(store_begin(f->c, &e), 0);
    assert_int_equal(stream_append(f->c, "P1", "A1", kind, payload, "key:K", &e), 0);
    assert_int_equal(store_commit(f->c, &e), 0);
}

typedef struct {
    int seen;
    char kinds[16][32];
    const char *fail_kind; /* handler fails on this kind */
    err_code_t fail_code;
} rec_t;

/* Records the event and writes a row, so that rollback of a failed event is visible. */
static int record(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    rec_t *r = ud;
    if (store_exec(c, e, "INSERT INTO stream_cursors (consumer, seq) VALUES ($1, $2)", "si",
                   ev->kind, ev->seq) < 0)
        return -1;
    if (r->fail_kind && strcmp(ev->kind, r->fail_kind) == 0)
        return err_set(e, r->fail_code, "handler refuses %s", ev->kind);
    assert_string_equal(ev->project_id, "P1");
    assert_string_equal(ev->actor, "key:K");
    assert_true(json_is_object(stream_event_payload(ev)));
    snprintf(r->kinds[r->seen++], 32, "%s", ev->kind);
    return 0;
}

static int64_t count_rows(fx_t *f, const char *consumer)
{
    err_t e = {0};
    store_stmt_t *st = store_query(
        f->c, &e, "SELECT COUNT(*) FROM stream_cursors WHERE consumer = $1", "s", consumer);
    assert_non_null(st);
    assert_int_equal(store_step(st, &e), 1);
    int64_t n = store_col_int(st, 0);
    store_done(st);
    return n;
}

static void test_consume_in_order_and_resume(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "ONE", "{\"n\":1}");
    append(f, "TWO", "{\"n\":2}");
    rec_t r = {0};
    assert_int_equal(stream_consume(f->c, "t", record, &r, 1, &e), 1);
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 1);
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 0);
    assert_int_equal(r.seen, 2);
    assert_string_equal(r.kinds[0], "ONE");
    assert_string_equal(r.kinds[1], "TWO");
    assert_int_equal(stream_cursor(f->c, "t", &e), 2);
    assert_int_equal(stream_head(f->c, &e), 2);
    append(f, "THREE", "{}");
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 1);
    assert_string_equal(r.kinds[2], "THREE");
    /* another consumer starts from the beginning, independently */
    rec_t r2 = {0};
    assert_int_equal(stream_consume(f->c, "u", record, &r2, 10, &e), 3);
}

/* With a group writer set, a batch runs on the writer's connection and thread, in its
 * transaction: same events, same cursor, the handler's writes committed with it. */
static pthread_t handler_thread;
static int record_where(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    handler_thread = pthread_self();
    return record(c, ev, ud, e);
}

static void test_consume_in_group_writer(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "ONE", "{\"n\":1}");
    append(f, "TWO", "{\"n\":2}");
    store_group_opts_t go = {.max_batch = 8};
    store_group_t *g = store_group_start(f->store, &go, &e);
    assert_non_null(g);
    stream_use_writer(g);
    rec_t r = {0};
    assert_int_equal(stream_consume_in(f->store, "w", NULL, record_where, &r, 10, &e), 2);
    assert_false(pthread_equal(handler_thread, pthread_self()));
    assert_int_equal(stream_consume_in(f->store, "w", NULL, record_where, &r, 10, &e), 0);
    stream_use_writer(NULL);
    store_group_stop(g);
    assert_int_equal(r.seen, 2);
    assert_int_equal(stream_cursor(f->c, "w", &e), 2);
    assert_int_equal(count_rows(f, "ONE") + count_rows(f, "TWO"), 2);
    /* without a writer: this thread's own connection */
    append(f, "THREE", "{}");
    assert_int_equal(stream_consume_in(f->store, "w", NULL, record_where, &r, 10, &e), 1);
    assert_true(pthread_equal(handler_thread, pthread_self()));
}

/* A consumer that names its kinds is not called for the others, and its cursor passes them. */
static void test_consume_only_its_kinds(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "ONE", "{}");
    append(f, "TWO", "{}");
    append(f, "THREE", "{}");
    append(f, "FOUR", "{}");
    static const char *const kinds[] = {"ONE", "THREE", "FIVE", NULL};
    rec_t r = {0};
    assert_int_equal(stream_consume_in(f->store, "k", kinds, record, &r, 10, &e), 4);
    assert_int_equal(r.seen, 2);
    assert_string_equal(r.kinds[0], "ONE");
    assert_string_equal(r.kinds[1], "THREE");
    assert_int_equal(count_rows(f, "TWO") + count_rows(f, "FOUR"), 0);
    assert_int_equal(stream_cursor(f->c, "k", &e), 4);
    append(f, "TWO", "{}"); /* only kinds it does not take: passed over all the same */
    assert_int_equal(stream_consume_in(f->store, "k", kinds, record, &r, 10, &e), 1);
    assert_int_equal(stream_cursor(f->c, "k", &e), 5);
    append(f, "FIVE", "{}");
    assert_int_equal(stream_consume_in(f->store, "k", kinds, record, &r, 10, &e), 1);
    assert_int_equal(r.seen, 3);
    assert_string_equal(r.kinds[2], "FIVE");
    assert_int_equal(stream_consume_in(f->store, "k", kinds, record, &r, 10, &e), 0);
}

static void test_failed_event_is_skipped_and_rolled_back(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "GOOD", "{}");
    append(f, "BAD", "{}");
    append(f, "AFTER", "{}");
    rec_t r = {.fail_kind = "BAD", .fail_code = ERR_INVALID_ARGUMENT};
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 3);
    assert_int_equal(r.seen, 2);
    assert_string_equal(r.kinds[1], "AFTER");
    assert_int_equal(count_rows(f, "GOOD"), 1);
    assert_int_equal(count_rows(f, "BAD"), 0); /* its writes were undone */
    assert_int_equal(stream_cursor(f->c, "t", &e), 3);
}

static void test_busy_stops_batch_for_retry(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "A", "{}");
    append(f, "BUSY", "{}");
    rec_t r = {.fail_kind = "BUSY", .fail_code = ERR_UNAVAILABLE};
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 2);
    assert_int_equal(stream_cursor(f->c, "t", &e), 1); /* BUSY is retried */
    r.fail_kind = NULL;
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 1);
    assert_string_equal(r.kinds[1], "BUSY");
}

static void test_trim_keeps_unconsumed(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "A", "{}");
    append(f, "B", "{}");
    rec_t r = {0};
    assert_int_equal(stream_consume(f->c, "t", record, &r, 1, &e), 1);
    assert_int_equal(stream_trim(f->c, INT64_MAX, 100, &e), 1); /* only A: B unread */
    assert_int_equal(stream_head(f->c, &e), 2);
    assert_int_equal(stream_consume(f->c, "t", record, &r, 10, &e), 1);
    assert_string_equal(r.kinds[1], "B");
}

static int take(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    (void)c, (void)ev, (void)ud, (void)e;
    return 0;
}

/* A cursor this version has no consumer for held trimming back until it was pruned. */
static void test_prune_unknown_cursors(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    append(f, "A", "{}");
    append(f, "B", "{}");
    assert_int_equal(stream_consume(f->c, "live", take, NULL, 10, &e), 2);
    assert_int_equal(stream_set_cursor(f->c, "renamed", 0, &e), 0); /* an older version's */
    assert_int_equal(stream_trim(f->c, INT64_MAX, 100, &e), 0);
    static const char *const known[] = {"live", "also_known", NULL};
    assert_int_equal(stream_cursors_prune(f->c, known, &e), 1);
    assert_int_equal(stream_cursor(f->c, "renamed", &e), 0);
    assert_int_equal(stream_cursor(f->c, "live", &e), 2);
    assert_int_equal(stream_trim(f->c, INT64_MAX, 100, &e), 2);
    assert_int_equal(stream_cursors_prune(f->c, known, &e), 0); /* nothing left to prune */
}

typedef struct {
    atomic_int handled;
} thr_t;

static int count_handler(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e)
{
    (void)c, (void)ev, (void)e;
    atomic_fetch_add(&((thr_t *)ud)->handled, 1);
    return 0;
}

static void test_consumer_thread_wakes_on_flush(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    thr_t t = {0};
    /* poll interval far longer than the test waits: only the nudge can wake it in time */
    stream_consumer_t *sc =
        stream_consumer_start(f->store, "thr", NULL, count_handler, &t, 60000, &e);
    assert_non_null(sc);
    usleep(50000);
    append(f, "X", "{}");
    nudge_flush();
    for (int i = 0; i < 200 && atomic_load(&t.handled) < 1; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&t.handled), 1);
    stream_consumer_stop(sc);
}

int main(void)
{
    nudge_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_consume_in_order_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consume_in_group_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consume_only_its_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_event_is_skipped_and_rolled_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_busy_stops_batch_for_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_keeps_unconsumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_unknown_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_thread_wakes_on_flush, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
