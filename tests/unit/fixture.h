/* fixture.h: what the unit tests that run on a real SQLite store share: a scratch directory
 * under /tmp, a store opened there (every migration applied) with this thread's
 * connection, a one-number query, and the removal of the directory. Header-only (static
 * inline), so each test stays one file and one binary; include it after <cmocka.h>. */
#ifndef PARLEY_TESTS_UNIT_FIXTURE_H
#define PARLEY_TESTS_UNIT_FIXTURE_H

#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>

/* A fresh directory "/tmp/parley-test-NAME-XXXXXX" in dir (64 bytes). 0, or -1. */
static inline int fx_tmpdir(char dir[64], const char *name)
{
    snprintf(dir, 64, "/tmp/parley-test-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* Remove dir and everything in it. 0, or -1. */
static inline int fx_rmdir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The store in dir (created and migrated if new) and this thread's connection to it in *c.
 * NULL, with the reason on stderr, if either fails. */
static inline store_t *fx_store_open(const char *dir, store_conn_t **c)
{
    err_t e = {0};
    store_opts_t o = {0};
    store_t *s = store_open(dir, &o, &e);
    if (s) *c = store_conn(s, &e);
    if (!s || !*c) {
        fprintf(stderr, "fixture: cannot open the store in %s: %s\n", dir, e.message);
        if (s) store_close(s);
        return NULL;
    }
    return s;
}

/* The first column of the first row of sql (e.g. a count); fails the test otherwise. */
static inline int64_t fx_count(store_conn_t *c, const char *sql)
{
    err_t e = {0};
    store_stmt_t *st = store_query(c, &e, sql, "");
    if (!st || store_step(st, &e) != 1) fail_msg("%s: %s", sql, e.message);
    int64_t n = store_col_int(st, 0);
    store_done(st);
    return n;
}

#endif
