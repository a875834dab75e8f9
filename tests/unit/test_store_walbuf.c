/* test_store_walbuf.c: the "parley" VFS (store/walbuf.h) on real files: a commit's WAL frames
 * reach the file system in one write, and are readable by another connection (on SQLite's
 * own VFS) when COMMIT returns; a commit survives the process being killed right after it,
 * while a transaction killed before its COMMIT leaves nothing; no room for the WAL fails the
 * transaction, not the process; pages a rolled-back transaction
 * spilled never land on another writer's commit; a transaction bigger than the page cache and
 * the buffer (spilled pages read back, savepoints rolled back) stays whole. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "store/walbuf.h"

#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    store_t *s;
    store_conn_t *c;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || fx_tmpdir(f->dir, "walbuf") < 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    int rc = fx_rmdir(f->dir);
    free(f);
    return rc;
}

static void open_store(fx_t *f)
{
    f->s = fx_store_open(f->dir, &f->c);
    assert_non_null(f->s);
    err_t e = {0};
    assert_int_equal(store_exec_script(f->c,
                                       "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY "
                                       "KEY, v BLOB NOT NULL)",
                                       &e),
                     0);
}

/* Insert rows [from, to) of n-byte blobs, each its own value. */
static void insert_rows(store_conn_t *c, int from, int to, int n)
{
    err_t e = {0};
    for (int k = from; k < to; k++)
        assert_int_equal(store_exec(c, &e, "INSERT INTO t (k, v) VALUES ($1, zeroblob($2))", "ii",
                                    (int64_t)k, (int64_t)n),
                         1);
}

/* Count of rows in t and whether the file is sound, read through SQLite's default VFS. */
static int64_t rows_outside(const char *dir, int check)
{
    char path[128];
    snprintf(path, sizeof path, "%s/parley.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (check) {
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_commit_is_one_write(void **state)
{
    fx_t *f = *state;
    assert_non_null(store_walbuf_vfs());
    open_store(f);
    err_t e = {0};
    uint64_t c0, p0, w0, c1, p1, w1;
    store_wal_stats(&c0, &p0, &w0);
    assert_int_equal(store_begin(f->c, &e), 0);
    insert_rows(f->c, 0, 200, 2000); /* ~100 pages: ~200 frame writes */
    assert_int_equal(store_commit(f->c, &e), 0);
    store_wal_stats(&c1, &p1, &w1);
    assert_true(2 * (p1 - p0) >= 200); /* SQLite's own VFS: two writes per page */
    assert_in_range(w1 - w0, 1, 2);
    /* Seen at once by a connection on SQLite's own VFS, without a checkpoint. */
    assert_int_equal(rows_outside(f->dir, 1), 200);
}

/* Fork a child that opens the store in f->dir, runs work(f->c), says so and waits; kill it
 * with SIGKILL then. */
static void killed_after(fx_t *f, void (*work)(store_conn_t *c))
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        open_store(f);
        work(f->c);
        if (write(pipefd[1], "x", 1) != 1) _exit(3);
        for (;;)
            pause();
    }
    close(pipefd[1]);
    char b;
    assert_int_equal(read(pipefd[0], &b, 1), 1);
    close(pipefd[0]);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
}

static void commit_100(store_conn_t *c)
{
    err_t e = {0};
    if (store_begin(c, &e) < 0) _exit(2);
    insert_rows(c, 0, 100, 3000);
    if (store_commit(c, &e) < 0) _exit(2);
}

/* Pages written to the WAL (more than the page cache holds: some spill), never committed. */
static void spill_uncommitted(store_conn_t *c)
{
    err_t e = {0};
    if (store_begin(c, &e) < 0) _exit(2);
    insert_rows(c, 100, 3100, 4000);
}

static void test_kill_after_commit_keeps_it(void **state)
{
    fx_t *f = *state;
    killed_after(f, commit_100);
    assert_int_equal(rows_outside(f->dir, 1), 100);
    killed_after(f, spill_uncommitted);
    assert_int_equal(rows_outside(f->dir, 1), 100);
}

/* No room for the WAL (here: a file size limit) fails the transaction with an error, as on
 * SQLite's own VFS, rather than the write at the commit barrier, which would have to abort
 * the process: the child lives on and commits what fits. */
static void test_no_room_fails_the_transaction(void **state)
{
    fx_t *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        open_store(f);
        err_t e = {0};
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {.rlim_cur = 2 << 20, .rlim_max = RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &lim) < 0) _exit(10);
        if (store_begin(f->c, &e) < 0) _exit(11);
        int failed = 0; /* ~3.3 MiB: fits the page cache and the buffer, so all at COMMIT */
        for (int k = 0; k < 800 && !failed; k++)
            failed = store_exec(f->c, &e, "INSERT INTO t (k, v) VALUES ($1, zeroblob(4000))", "i",
                                (int64_t)k) < 0;
        if (!failed)
            failed = store_commit(f->c, &e) < 0;
        else
            store_rollback(f->c);
        if (!failed) _exit(12);
        if (e.code != ERR_UNAVAILABLE) _exit(13); /* "store full (disk)" */
        if (store_exec(f->c, &e, "INSERT INTO t (k, v) VALUES (1, zeroblob(10))", "") != 1)
            _exit(14);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rows_outside(f->dir, 1), 1);
}

/* A transaction that spilled pages and rolled back, then another connection commits where
 * those pages were gathered, then the first commits again: nothing of the second is lost. */
static void test_rolled_back_spill_leaves_others_commits(void **state)
{
    fx_t *f = *state;
    open_store(f);
    err_t e = {0};
    insert_rows(f->c, 0, 10, 100);
    assert_int_equal(store_begin(f->c, &e), 0);
    insert_rows(f->c, 10, 2600, 4000); /* ~10 MB: past the 8 MiB page cache */
    store_rollback(f->c);
    char path[128];
    snprintf(path, sizeof path, "%s/parley.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                  "WHERE i < 50) INSERT INTO t (k, v) SELECT 100000 + i, "
                                  "zeroblob(3000) FROM n",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    insert_rows(f->c, 20000, 20010, 100);
    assert_int_equal(rows_outside(f->dir, 1), 70);
}

static void test_big_transaction_with_savepoints(void **state)
{
    fx_t *f = *state;
    open_store(f);
    err_t e = {0};
    assert_int_equal(store_begin(f->c, &e), 0);
    insert_rows(f->c, 0, 1500, 4000);           /* past the 8 MiB cache and the 4 MiB buffer */
    assert_int_equal(store_begin(f->c, &e), 0); /* a savepoint */
    insert_rows(f->c, 1500, 3000, 4000);
    assert_int_equal(store_exec(f->c, &e, "DELETE FROM t WHERE k < 100", ""), 100);
    store_rollback(f->c);
    insert_rows(f->c, 1500, 1600, 100);
    assert_int_equal(store_commit(f->c, &e), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM t"), 1600);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM t WHERE k < 100"), 100);
    assert_int_equal(rows_outside(f->dir, 1), 1600);
    /* The next commits after a checkpoint that restarted the WAL from its start. */
    assert_int_equal(store_exec_script(f->c, "PRAGMA wal_checkpoint(RESTART)", &e), 0);
    insert_rows(f->c, 5000, 5010, 100);
    assert_int_equal(rows_outside(f->dir, 1), 1610);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_is_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_after_commit_keeps_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_room_fails_the_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_spill_leaves_others_commits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_big_transaction_with_savepoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
