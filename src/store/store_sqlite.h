/* store_sqlite.h: the SQLite backend's private structures, shared by its files
 * (store_sqlite.c: connections, statements, migrations; store_admin.c: backups and
 * schema introspection). Nothing outside src/store/ includes this. */
#ifndef PARLEY_STORE_SQLITE_H
#define PARLEY_STORE_SQLITE_H

#include "store/store.h"

#include <pthread.h>
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
    int ckpt_started, ckpt_stop, ckpt_want;
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
};

/* WAL pages after which the checkpointer is woken (SQLite's own auto-checkpoint default). */
#define CKPT_PAGES 1000

#endif
