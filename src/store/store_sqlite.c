/* store_sqlite.c: the embedded backend of store.h. SQLite in WAL mode, one connection per
 * thread (found through a thread-local slot), a per-connection statement cache keyed by
 * SQL text, `$N` parameters rewritten to SQLite's `?N`, and versioned migrations applied
 * at open via PRAGMA user_version. */
#define _GNU_SOURCE
#include "store/store.h"
#include "base/hash.h"
#include "store/store_sqlite.h"
#include "store/migrations.h"
#include "store/walbuf.h"
#include "base/buf.h"
#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

static atomic_uint_fast64_t store_errors;
static atomic_uint_fast64_t store_gen_counter;
/* A thread may use a few stores at once (tests, backup tools): one slot per store. */
#define TL_SLOTS 4
static __thread struct {
    uint64_t gen;
    store_conn_t *conn;
} tl_slots[TL_SLOTS];
static __thread unsigned tl_next;

uint64_t store_error_count(void)
{
    return atomic_load(&store_errors);
}

/* Commits that wrote pages, and the pages they wrote to the WAL (wal_hook). */
static atomic_uint_fast64_t wal_commits, wal_frames;

void store_wal_stats(uint64_t *commits, uint64_t *frames, uint64_t *writes)
{
    *commits = atomic_load(&wal_commits);
    *frames = atomic_load(&wal_frames);
    *writes = store_walbuf_writes();
}

static int db_fail(sqlite3 *db, err_t *e, const char *what)
{
    int rc = sqlite3_extended_errcode(db);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return err_set(e, ERR_ALREADY_EXISTS, "already exists: %s", sqlite3_errmsg(db));
    atomic_fetch_add(&store_errors, 1);
    log_kv(LOG_ERROR, "store error", "op", what, "error", sqlite3_errmsg(db));
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return err_set(e, ERR_UNAVAILABLE, "store busy, retry");
    if ((rc & 0xff) == SQLITE_FULL) return err_set(e, ERR_UNAVAILABLE, "store full (disk)");
    return err_set(e, ERR_INTERNAL, "store error");
}

/* `$12` -> `?12` outside quoted literals and identifiers. */
static char *sql_rewrite(const char *sql)
{
    char *out = xstrdup(sql);
    char quote = 0;
    for (char *p = out; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            *p = '?';
        }
    }
    return out;
}

/* Process-wide SQLite settings, before the library initializes. Memory statistics off:
 * with them on, every sqlite3_malloc/free takes one global mutex, which the writer, the
 * HTTP threads and the consumers then contend for. */
static void sqlite_global_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

void store_sqlite_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_init);
}

static sqlite3 *db_open(const store_t *s, int create, err_t *e)
{
    store_sqlite_init();
    sqlite3 *db = NULL;
    int flags = (s->opts.readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &db, flags, s->opts.vfs ? s->opts.vfs : store_walbuf_vfs()) !=
        SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "cannot open %s: %s", s->path,
                db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_extended_result_codes(db, 1);
    /* mmap: pages of the main file are read without a syscall each, which matters because a
     * connection's page cache is dropped whenever another connection commits. Checkpoints
     * run on the checkpointer thread, not in whichever writer crossed the threshold (a
     * checkpoint fsyncs: a writer doing it would hold every other writer up meanwhile). */
    char pragmas[320];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; PRAGMA cache_size=-8192;"
             "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=%lld;",
             s->opts.synchronous_full ? "FULL" : "NORMAL", WAL_SIZE_LIMIT);
    char *msg = NULL;
    if (!s->opts.readonly && sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "cannot configure %s: %s", s->path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* After every commit (SQLite's WAL hook): past ckpt_pages, wake the checkpointer; past twice
 * that, ask the writer to settle the WAL (see checkpoint_once) even if the checkpointer, at
 * its low priority, has not had the CPU to ask. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    store_t *s = arg;
    /* This process's commits are serialised (write_lock), so the growth since the last one
     * is this commit's; a smaller size means the WAL restarted from its start. */
    int last = atomic_exchange(&s->wal_last_pages, pages);
    atomic_fetch_add(&wal_commits, 1);
    atomic_fetch_add(&wal_frames, (uint64_t)(pages >= last ? pages - last : pages));
    if (pages >= s->ckpt_pages) {
        if (pages >= 2 * s->ckpt_pages) atomic_store(&s->wal_settle, 1);
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_want = 1;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    return SQLITE_OK;
}

static int64_t mono_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* One background checkpoint. A PASSIVE one copies what it can without waiting; but while a
 * writer keeps appending, the WAL never empties, so it never restarts from its start and
 * grows without bound (and each append to a new region of the file costs the kernel a
 * fresh zeroed block). So when much is left, the writer is asked to settle it between two
 * batches (store_wal_settle), and this thread leaves it the checkpoint lock meanwhile (a
 * second checkpointer gets SQLITE_BUSY at once). If nobody settles it within
 * CKPT_SETTLE_WAIT_MS (no group writer), the WAL is restarted here, holding writers up. */
static void checkpoint_once(store_t *s, sqlite3 *db)
{
    if (atomic_load(&s->wal_settle)) {
        int64_t now = mono_ms();
        if (!s->settle_since) s->settle_since = now;
        if (now - s->settle_since < CKPT_SETTLE_WAIT_MS) return;
        if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL) == SQLITE_OK)
            atomic_store(&s->wal_settle, 0);
        s->settle_since = 0;
        return;
    }
    s->settle_since = 0;
    int log = 0, done = 0;
    if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) == SQLITE_OK &&
        log >= 2 * s->ckpt_pages)
        atomic_store(&s->wal_settle, 1);
}

int store_wal_settle(store_conn_t *c)
{
    store_t *s = c->store;
    if (c->depth > 0 || !atomic_load(&s->wal_settle)) return 0;
    /* Between this writer's transactions nothing appends, so a PASSIVE checkpoint copies the
     * rest (the background ones did the bulk) and the next write starts the WAL from its
     * start. PASSIVE never waits: a reader still on an old snapshot (an export, a backup)
     * or a background pass still running leaves part of it, and the next call retries,
     * rather than hold every send up meanwhile. */
    int log = 0, done = 0;
    if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
            SQLITE_OK ||
        done < log)
        return 0;
    atomic_store(&s->wal_settle, 0);
    return 1;
}

/* The checkpointer: copies WAL pages back into the main file (PASSIVE: it never waits for,
 * nor blocks, readers or writers), when woken by wal_hook and at least once a second, on a
 * connection of its own. With synchronous=NORMAL the fsyncs happen here, off the writers'
 * path; the WAL is reused from its start by the next writer once fully checkpointed. */
static void *checkpointer(void *arg)
{
    store_t *s = arg;
    pthread_setname_np(pthread_self(), "parley-ckpt");
    err_t e;
    sqlite3 *db = db_open(s, 0, &e);
    if (!db) log_kv(LOG_ERROR, "checkpointer: cannot open the store", "error", e.message);
    pthread_mutex_lock(&s->ckpt_lock);
    while (!s->ckpt_stop) {
        if (!s->ckpt_want) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&s->ckpt_cond, &s->ckpt_lock, &until);
            if (s->ckpt_stop) break;
        }
        s->ckpt_want = 0;
        pthread_mutex_unlock(&s->ckpt_lock);
        if (db) checkpoint_once(s, db);
        pthread_mutex_lock(&s->ckpt_lock);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    sqlite3_close(db);
    return NULL;
}

static store_conn_t *conn_new(store_t *s, err_t *e)
{
    sqlite3 *db = db_open(s, 0, e);
    if (!db) return NULL;
    store_conn_t *c = xcalloc(1, sizeof *c);
    c->db = db;
    c->store = s;
    if (!s->opts.readonly) sqlite3_wal_hook(db, wal_hook, s);
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
    return c;
}

static void stmt_free(store_stmt_t *st)
{
    sqlite3_finalize(st->st);
    free(st->sql);
    free(st);
}

static void conn_free(store_conn_t *c)
{
    for (size_t i = 0; i < c->ncache; i++)
        stmt_free(c->cache[i]);
    free(c->cache);
    sqlite3_close(c->db);
    free(c);
}

store_conn_t *store_conn(store_t *s, err_t *e)
{
    for (int i = 0; i < TL_SLOTS; i++)
        if (tl_slots[i].gen == s->gen && tl_slots[i].conn) return tl_slots[i].conn;
    store_conn_t *c = conn_new(s, e);
    if (c) { /* an evicted connection stays open in s->conns until store_close */
        unsigned slot = tl_next++ % TL_SLOTS;
        tl_slots[slot].gen = s->gen;
        tl_slots[slot].conn = c;
    }
    return c;
}

int store_exec_script(store_conn_t *c, const char *sql, err_t *e)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) return db_fail(c->db, e, "exec");
    return 0;
}

/* Transactions nest: inside an open one, begin/commit/rollback become a savepoint, its
 * release and its rollback, so a caller can batch several units of work (each with its
 * own begin/commit) into one commit, and one failing unit undoes only itself. */
/* Transaction control through the statement cache: parsed once per connection, not at every
 * begin, savepoint and commit (a group commit runs two savepoints per unit). */
static int tx_exec(store_conn_t *c, const char *sql, err_t *e)
{
    return store_exec(c, e, sql, "") < 0 ? -1 : 0;
}

void store_config_pin(store_conn_t *c, int on)
{
    c->config_pinned = on;
    c->config_have = 0;
}

int store_config_gen(store_conn_t *c, uint64_t *token, err_t *e)
{
    if (c->config_pinned && c->config_have) {
        *token = c->config_token;
        return 0;
    }
    store_stmt_t *st = store_query(c, e, "SELECT gen FROM config_gen WHERE id = 1", "");
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        *token = (c->store->gen << 40) ^ (uint64_t)store_col_int(st, 0);
        c->config_token = *token;
        c->config_have = c->config_pinned;
    }
    store_done(st);
    if (rc == 0) return err_set(e, ERR_INTERNAL, "store: config_gen row missing");
    return rc < 0 ? -1 : 0;
}

int store_in_tx(const store_conn_t *c)
{
    return c->depth > 0;
}

void store_elide_savepoints(store_conn_t *c, int on)
{
    c->elide_above = on ? c->depth : 0;
    c->poisoned = 0;
}

int store_poisoned(const store_conn_t *c)
{
    return c->poisoned;
}

int store_begin(store_conn_t *c, err_t *e)
{
    if (c->elide_above > 0 && c->depth >= c->elide_above) { /* see store_elide_savepoints */
        c->depth++;
        return 0;
    }
    if (c->depth > 0) {
        if (tx_exec(c, "SAVEPOINT nest", e) < 0) return -1;
        c->depth++;
        return 0;
    }
    /* This process's writers queue on a mutex, waking the moment it is free, instead of
     * sleeping in SQLite's busy handler (whole milliseconds) while another thread writes.
     * Other processes (the CLI) still meet at SQLite's own lock. */
    pthread_mutex_lock(&c->store->write_lock);
    if (tx_exec(c, "BEGIN IMMEDIATE", e) < 0) {
        pthread_mutex_unlock(&c->store->write_lock);
        return -1;
    }
    c->depth = 1;
    return 0;
}

int store_commit(store_conn_t *c, err_t *e)
{
    if (c->elide_above > 0 && c->depth > c->elide_above) {
        c->depth--;
        return 0;
    }
    if (c->depth > 1) {
        if (tx_exec(c, "RELEASE nest", e) < 0) {
            store_rollback(c);
            return -1;
        }
        c->depth--;
        return 0;
    }
    if (tx_exec(c, "COMMIT", e) < 0) {
        store_rollback(c);
        return -1;
    }
    c->depth = 0;
    pthread_mutex_unlock(&c->store->write_lock);
    return 0;
}

void store_rollback(store_conn_t *c)
{
    if (c->elide_above > 0 && c->depth > c->elide_above) {
        c->depth--;
        c->poisoned = 1; /* nothing was undone: the caller must roll back the whole run */
        return;
    }
    if (c->depth > 1) {
        err_t ignored;
        if (tx_exec(c, "ROLLBACK TO nest", &ignored) < 0 ||
            tx_exec(c, "RELEASE nest", &ignored) < 0)
            log_kv(LOG_ERROR, "store: savepoint rollback failed", "error", ignored.message);
        c->depth--;
        return;
    }
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    if (c->depth == 1) pthread_mutex_unlock(&c->store->write_lock);
    c->depth = 0;
}

static store_stmt_t *stmt_get(store_conn_t *c, const char *sql, err_t *e)
{
    uint64_t h = hash_str(sql);
    for (size_t i = 0; i < c->ncache; i++) {
        store_stmt_t *st = c->cache[i];
        if (st->hash == h && !st->in_use && strcmp(st->sql, sql) == 0) {
            st->in_use = 1;
            return st;
        }
    }
    char *rewritten = sql_rewrite(sql);
    sqlite3_stmt *raw = NULL;
    int rc = sqlite3_prepare_v3(c->db, rewritten, -1, SQLITE_PREPARE_PERSISTENT, &raw, NULL);
    free(rewritten);
    if (rc != SQLITE_OK) {
        db_fail(c->db, e, "prepare");
        log_kv(LOG_ERROR, "bad SQL", "sql", sql);
        return NULL;
    }
    store_stmt_t *st = xcalloc(1, sizeof *st);
    st->st = raw;
    st->conn = c;
    st->hash = h;
    st->sql = xstrdup(sql);
    st->in_use = 1;
    /* Cache it unless an identical statement is already out (re-entrant use): that
     * second copy is finalised by store_done. Cache size is bounded by distinct SQL. */
    int dup = 0;
    for (size_t i = 0; i < c->ncache; i++)
        if (c->cache[i]->hash == h && strcmp(c->cache[i]->sql, sql) == 0) dup = 1;
    if (!dup) {
        if (c->ncache == c->capcache) {
            c->capcache = c->capcache ? c->capcache * 2 : 32;
            c->cache = xrealloc(c->cache, c->capcache * sizeof(store_stmt_t *));
        }
        c->cache[c->ncache++] = st;
        st->cached = 1;
    }
    return st;
}

void store_done(store_stmt_t *st)
{
    if (!st) return;
    if (!st->cached) {
        stmt_free(st);
        return;
    }
    sqlite3_reset(st->st);
    sqlite3_clear_bindings(st->st);
    st->in_use = 0;
}

static int stmt_bindv(store_stmt_t *st, const char *fmt, va_list ap, err_t *e)
{
    int rc = SQLITE_OK;
    for (int i = 1; fmt && *fmt && rc == SQLITE_OK; fmt++, i++) {
        switch (*fmt) {
        case 's': {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(st->st, i, v, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st->st, i);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st->st, i, va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_int64(st->st, i, va_arg(ap, int));
            break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = sqlite3_bind_blob64(st->st, i, p, n, SQLITE_TRANSIENT);
            break;
        }
        case 'n':
            rc = sqlite3_bind_null(st->st, i);
            break;
        default:
            return err_set(e, ERR_INTERNAL, "store: bad bind format '%c'", *fmt);
        }
    }
    if (rc != SQLITE_OK) return db_fail(st->conn->db, e, "bind");
    return 0;
}

static store_stmt_t *queryv(store_conn_t *c, err_t *e, const char *sql, const char *fmt, va_list ap)
{
    store_stmt_t *st = stmt_get(c, sql, e);
    if (!st) return NULL;
    if (stmt_bindv(st, fmt, ap, e) < 0) {
        store_done(st);
        return NULL;
    }
    return st;
}

store_stmt_t *store_query(store_conn_t *c, err_t *e, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_stmt_t *st = queryv(c, e, sql, fmt, ap);
    va_end(ap);
    return st;
}

int64_t store_exec(store_conn_t *c, err_t *e, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_stmt_t *st = queryv(c, e, sql, fmt, ap);
    va_end(ap);
    if (!st) return -1;
    int rc;
    while ((rc = store_step(st, e)) == 1) {
    }
    int64_t changes = rc < 0 ? -1 : sqlite3_changes64(c->db);
    store_done(st);
    c->config_have = 0; /* a write: it may have changed the configuration */
    return changes;
}

int store_step(store_stmt_t *st, err_t *e)
{
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return db_fail(st->conn->db, e, "step");
}

const char *store_col_text(store_stmt_t *st, int col)
{
    return (const char *)sqlite3_column_text(st->st, col);
}

int64_t store_col_int(store_stmt_t *st, int col)
{
    return sqlite3_column_int64(st->st, col);
}

const void *store_col_blob(store_stmt_t *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st->st, col);
    *len = (size_t)sqlite3_column_bytes(st->st, col);
    return p;
}

int store_col_is_null(store_stmt_t *st, int col)
{
    return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

int store_schema_latest(void)
{
    return store_migration_count;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

int store_schema_version(store_t *s)
{
    err_t e;
    store_conn_t *c = store_conn(s, &e);
    return c ? user_version(c->db) : -1;
}

static int migrate(store_t *s, sqlite3 *db, err_t *e)
{
    int have = user_version(db);
    if (have < 0)
        return err_set(e, ERR_INTERNAL, "%s is not a Parley store: %s", s->path,
                       sqlite3_errmsg(db));
    if (have > store_migration_count)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "%s has schema version %d but this parley knows only up to %d: it was "
                       "written by a newer parley; upgrade the binary (refusing to touch it)",
                       s->path, have, store_migration_count);
    for (int i = have; i < store_migration_count; i++) {
        const store_migration_t *m = &store_migrations[i];
        char *msg = NULL, setv[64];
        snprintf(setv, sizeof setv, "PRAGMA user_version=%d", m->version);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            user_version(db) != i /* another process migrated meanwhile */) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            sqlite3_free(msg);
            if (user_version(db) > i) continue;
            return err_set(e, ERR_INTERNAL, "migration %s: cannot lock the store", m->name);
        }
        if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, setv, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            err_set(e, ERR_INTERNAL, "migration %s failed: %s", m->name, msg ? msg : "?");
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        log_kv(LOG_INFO, "migration applied", "name", m->name);
    }
    return 0;
}

store_t *store_open(const char *data_dir, const store_opts_t *opts, err_t *e)
{
    if (!opts->readonly && mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
        err_set(e, ERR_INTERNAL, "cannot create data dir %s: %s", data_dir, strerror(errno));
        return NULL;
    }
    store_t *s = xcalloc(1, sizeof *s);
    if ((size_t)snprintf(s->path, sizeof s->path, "%s/parley.db", data_dir) >= sizeof s->path) {
        free(s);
        err_set(e, ERR_INVALID_ARGUMENT, "data dir path too long");
        return NULL;
    }
    s->opts = *opts;
    s->ckpt_pages = opts->wal_pages > 0 ? opts->wal_pages : CKPT_PAGES;
    s->gen = atomic_fetch_add(&store_gen_counter, 1) + 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    sqlite3 *db = db_open(s, !opts->readonly, e);
    if (!db) {
        store_close(s);
        return NULL;
    }
    int rc = opts->readonly ? 0 : migrate(s, db, e);
    if (rc == 0 && opts->readonly && user_version(db) > store_migration_count)
        rc = err_set(e, ERR_FAILED_PRECONDITION, "%s was written by a newer parley", s->path);
    sqlite3_close(db);
    if (rc < 0) {
        store_close(s);
        return NULL;
    }
    if (!opts->readonly) {
        /* Signals stay with the threads that wait for them (main's sigwait): the
         * checkpointer starts with every signal blocked, whenever the store is opened. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) == 0) s->ckpt_started = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return s;
}

void store_close(store_t *s)
{
    if (!s) return;
    if (s->ckpt_started) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stop = 1;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->ckpt_thread, NULL);
    }
    for (store_conn_t *c = s->conns, *n; c; c = n) {
        n = c->next;
        conn_free(c);
    }
    for (int i = 0; i < TL_SLOTS; i++)
        if (tl_slots[i].gen == s->gen) tl_slots[i].conn = NULL;
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->ckpt_cond);
    free(s);
}
