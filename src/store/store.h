/* store.h: the storage interface every domain module uses. Nothing outside src/store/
 * includes sqlite3.h: a PostgreSQL backend slots in behind these functions without
 * touching handlers. SQL passed in is portable: numbered parameters `$1`, `$2`, ...;
 * times are INTEGER milliseconds since the epoch; ids are TEXT.
 *
 * Threads: each thread gets its own connection (store_conn); statements are prepared
 * once per connection and cached. A store_stmt_t belongs to its connection and must be
 * finished with store_done before the thread prepares the same SQL again. */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;
typedef struct store_conn store_conn_t;
typedef struct store_stmt store_stmt_t;

typedef struct {
    int synchronous_full; /* fsync every commit (power-loss durable) instead of at checkpoints */
    int readonly;         /* open without creating or migrating (for inspection tools) */
    int wal_pages;        /* WAL pages that wake the checkpointer (0 = 4000, 16 MiB); past twice as
                             many left over, the writer settles the WAL (store_wal_settle) */
    const char *vfs;      /* SQLite VFS by name; NULL = Parley's (walbuf.h). For comparisons. */
} store_opts_t;

/* Open DATA_DIR/parley.db (creating the directory and file), apply pending migrations, and
 * refuse a file whose schema is newer than this binary. */
store_t *store_open(const char *data_dir, const store_opts_t *opts, err_t *e);
/* Close every connection. No thread may use the store afterwards. */
void store_close(store_t *s);
int store_schema_version(store_t *s);
/* Highest migration this binary knows. */
int store_schema_latest(void);
/* Total store errors since start, for /metrics. */
uint64_t store_error_count(void);
/* Commits that wrote pages, the pages (WAL frames) they wrote, and the write calls that
 * carried those to the file system, since start, for /metrics: frames per commit is what a
 * transaction costs the disk (and the checkpointer after it); writes per commit is 1 when
 * the WAL's writes are gathered (walbuf.c), two per frame when they are not. */
void store_wal_stats(uint64_t *commits, uint64_t *frames, uint64_t *writes);

/* This thread's connection, opened on first use. NULL with e filled on failure. */
store_conn_t *store_conn(store_t *s, err_t *e);

/* Write transactions take the write lock at BEGIN (no upgrade deadlocks). They nest: a
 * begin inside an open transaction is a savepoint, so work can be batched into one
 * commit by an outer begin/commit; a rollback undoes only its own level. */
int store_begin(store_conn_t *c, err_t *e);
int store_commit(store_conn_t *c, err_t *e);
void store_rollback(store_conn_t *c);
/* For a connection that writes continuously (the group writer), between two of its
 * transactions: when the checkpointer asked for it, copy the rest of the WAL into the
 * database so that the WAL restarts from its start. 1 if it did, else 0. Cheap otherwise. */
int store_wal_settle(store_conn_t *c);
/* The configuration generation as a token for tcache (base/tcache.h): the counter that
 * every change to access keys, projects, apps and app credentials advances (by trigger,
 * migration 012), combined with this store's identity. Read it BEFORE reading the data
 * cached under it. 0 or -1 (error). */
int store_config_gen(store_conn_t *c, uint64_t *token, err_t *e);
/* While pinned (on = 1 until on = 0), store_config_gen on c reads the counter once and then
 * answers that value again: one request sees one configuration, and pays one read for it
 * (its key check and its send both check the counter). A store_exec on c (a write) keeps
 * the pin but forgets the value, so a request that changes the configuration reads it anew. */
void store_config_pin(store_conn_t *c, int on);
/* Savepoint elision, for a caller that can undo and redo a whole run of work (the group
 * writer): while on, store_begin/store_commit deeper than the current level only count
 * levels, and store_rollback there undoes nothing but marks the connection poisoned; the
 * caller must then roll back its own enclosing level and redo the work with elision off.
 * Saves a SAVEPOINT, its RELEASE and the sub-journal copy of every page first touched in
 * it. Turning it on or off clears the mark. */
void store_elide_savepoints(store_conn_t *c, int on);
int store_poisoned(const store_conn_t *c);
/* 1 while c is inside a transaction (at any depth), else 0. */
int store_in_tx(const store_conn_t *c);

/* Prepare (from the cache) and bind in one call. fmt has one letter per parameter:
 *   s  const char *      (NULL binds SQL NULL)
 *   i  int64_t
 *   d  int (promoted)
 *   b  const void *, size_t   (blob)
 *   n  (no argument)     SQL NULL
 * Returns NULL with e filled on error. */
store_stmt_t *store_query(store_conn_t *c, err_t *e, const char *sql, const char *fmt, ...);
/* Run a statement to completion; returns rows changed, or -1. Unique violations answer
 * ERR_ALREADY_EXISTS. */
int64_t store_exec(store_conn_t *c, err_t *e, const char *sql, const char *fmt, ...);
/* Run a script of several statements without parameters (migrations, maintenance). */
int store_exec_script(store_conn_t *c, const char *sql, err_t *e);

/* 1 = a row is ready, 0 = done, -1 = error (e filled). */
int store_step(store_stmt_t *st, err_t *e);
const char *store_col_text(store_stmt_t *st,
                           int col); /* NULL for SQL NULL; valid until next step */
int64_t store_col_int(store_stmt_t *st, int col);
const void *store_col_blob(store_stmt_t *st, int col, size_t *len);
int store_col_is_null(store_stmt_t *st, int col);
/* Reset and return the statement to its connection's cache. Accepts NULL. */
void store_done(store_stmt_t *st);

/* ---- lifecycle: backups and schema introspection (store_admin.c) ---- */

/* Write a consistent copy of the whole store to path with SQLite's online backup API, in
 * one read transaction: writers go on meanwhile (WAL) and the copy holds exactly what was
 * committed when it began. Written to path.tmp, fsynced, then renamed over path. An
 * unwritable target answers ERR_INVALID_ARGUMENT naming the path and the OS reason. */
int store_backup(store_t *s, const char *path, err_t *e);
/* Check that path is a whole Parley store this binary can open: an SQLite file that
 * passes PRAGMA integrity_check, with a schema version in 1..store_schema_latest().
 * Fills *version. Opens the file read-only; changes nothing. */
int store_check_file(const char *path, int *version, err_t *e);

/* A read snapshot: every read between begin and end sees the store as of the first one,
 * while writers go on (WAL). For multi-statement reads that must agree (export). Not
 * inside a write transaction. */
int store_snapshot_begin(store_conn_t *c, err_t *e);
void store_snapshot_end(store_conn_t *c);

/* One table of the schema, for code that must follow tables added later (export, tenant
 * purge). cols in declaration order; pk lists primary-key columns; fks the foreign keys
 * (single-column: from -> table(to)). Freed by store_tables_free. */
typedef struct {
    char *from, *table, *to;
} store_fk_t;
typedef struct {
    char *name;
    char **cols;
    int ncols;
    char **pk;
    int npk;
    store_fk_t *fks;
    int nfks;
} store_table_t;
/* Every user table (not SQLite's own), in name order. NULL with e filled on error. */
store_table_t *store_tables(store_conn_t *c, int *n, err_t *e);
void store_tables_free(store_table_t *t, int n);
/* A column's value as text, whatever its type (blob as-is); type: 0 null, 1 int, 2 real,
 * 3 text, 4 blob. */
int store_col_type(store_stmt_t *st, int col);
double store_col_double(store_stmt_t *st, int col);
/* Number of columns in a result row. */
int store_col_count(store_stmt_t *st);
/* Run one statement with values bound from an array (for code that builds SQL over the
 * schema at run time, e.g. import). Returns rows changed, or -1 (unique violations answer
 * ERR_ALREADY_EXISTS). Not cached: for bulk work, not request paths. */
typedef struct {
    int type; /* as store_col_type: 0 null, 1 int, 2 real, 3 text, 4 blob */
    int64_t i;
    double d;
    const char *s; /* text, or blob bytes */
    size_t len;    /* blob length */
} store_val_t;
int64_t store_exec_vals(store_conn_t *c, err_t *e, const char *sql, const store_val_t *v, int n);

/* Load DATA_DIR/secret.key (32 random bytes, mode 0600), creating it on first use. The key
 * is the root of token signing and at-rest encryption; PARLEY_SECRET_KEY (base64url)
 * overrides the file. */
int store_keyfile_load(const char *data_dir, uint8_t key[32], err_t *e);

#endif
