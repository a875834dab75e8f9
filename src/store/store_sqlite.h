/* store_sqlite.h: the SQLite backend's private structures, shared by its files
 * (store_sqlite.c: connections, statements, migrations; store_admin.c: backups and
 * schema introspection). Nothing outside src/store/ includes this. */
#ifndef PARLEY_STORE_SQLITE_H
#define PARLEY_STORE_SQLITE_H

#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

struct store_stmt {
    sqlite3_stmt *st;
    store_conn_t *conn;
    uint64_t hash;
    char *sql;
    int in_use, cached;
};

struct store_conn {
    sqlite3 *db;
    int depth; /* open store_begin levels (see store_begin) */
    /* store_elide_savepoints: levels above this one are counted, not opened (0 = off);
     * poisoned: a rollback was asked for at such a level. */
    int elide_above, poisoned;
    /* store_config_pin: pinned; have: config_token holds the counter read while pinned. */
    int config_pinned, config_have;
    uint64_t config_token;
    store_t *store;
    store_stmt_t **cache;
    size_t ncache, capcache;
    struct store_conn *next;
};

struct store {
    char path[4096];
    store_opts_t opts;
    uint64_t gen;
    pthread_mutex_t lock;
    pthread_mutex_t write_lock; /* see store_begin */
    store_conn_t *conns;
    /* The checkpointer (see checkpointer()): its thread, and a wake-up when the WAL grew. */
    pthread_t ckpt_thread;
    int ckpt_started, ckpt_stop, ckpt_want, ckpt_pages;
    /* Set by the checkpointer when the WAL stays long because writers keep appending while it
     * copies: the writer finishes the checkpoint between two transactions (store_wal_settle)
     * so that the WAL restarts from its start. settle_since: since when the checkpointer has
     * found it long (monotonic ms, 0 = it did not). */
    atomic_int wal_settle;
    atomic_int wal_last_pages; /* the WAL's size after the last commit (wal_hook) */
    int64_t settle_since;
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
};

/* Process-wide SQLite configuration; idempotent, called before any connection opens. */
void store_sqlite_init(void);

/* WAL pages after which the checkpointer is woken, unless store_opts_t.wal_pages says
 * otherwise (16 MiB: four times SQLite's default, so a page rewritten by many commits, an
 * index's hot leaf, is copied back once, not four times). Past twice as many left after a
 * background checkpoint, the writer is asked to settle the WAL; CKPT_SETTLE_WAIT_MS is how
 * long the checkpointer waits for that before it restarts the WAL itself, holding writers up
 * meanwhile (no group writer, e.g. store.group_commit = 0). */
#define CKPT_PAGES          4000
#define CKPT_SETTLE_WAIT_MS 2000
/* The WAL file is truncated to this size when it restarts (SQLite's journal_size_limit). */
#define WAL_SIZE_LIMIT (64LL * 1024 * 1024)

#endif
