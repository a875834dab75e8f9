/* store_admin.c: the SQLite backend's lifecycle operations: online backups, checking a
 * backup file before a restore, and schema introspection (tables, columns, primary and
 * foreign keys) for code that must follow tables added by later migrations (export,
 * tenant purge) without knowing them. */
#define _GNU_SOURCE
#include "store/store_sqlite.h"
#include "store/migrations.h"
#include "base/buf.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int store_backup(store_t *s, const char *path, err_t *e)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* Probe the target first: SQLite's own message for an unwritable file is vague. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot write backup to %s: %s", path,
                       strerror(errno));
    close(fd);
    sqlite3 *src = NULL, *dst = NULL;
    store_sqlite_init();
    int rc = sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "backup: cannot open: %s", sqlite3_errmsg(dst ? dst : src));
        goto fail;
    }
    sqlite3_busy_timeout(src, 10000);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        err_set(e, ERR_INTERNAL, "backup: %s", sqlite3_errmsg(dst));
        goto fail;
    }
    /* All pages in one step: one read transaction, so the copy is one snapshot and a
     * busy writer cannot make it restart forever (WAL readers do not block writers). */
    do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        err_set(e, rc == SQLITE_FULL || rc == SQLITE_IOERR ? ERR_INVALID_ARGUMENT : ERR_INTERNAL,
                "backup to %s failed: %s", path, sqlite3_errstr(rc));
        goto fail;
    }
    /* A self-contained file: no WAL beside it. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "backup: %s", sqlite3_errmsg(dst));
        goto fail;
    }
    sqlite3_close(dst);
    sqlite3_close(src);
    if (fsync_path(tmp) < 0 || rename(tmp, path) < 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "cannot write backup to %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
fail:
    sqlite3_close(dst);
    sqlite3_close(src);
    unlink(tmp);
    return -1;
}

int store_check_file(const char *path, int *version, err_t *e)
{
    if (access(path, R_OK) < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot read %s: %s", path, strerror(errno));
    sqlite3 *db = NULL;
    store_sqlite_init();
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    sqlite3_stmt *st = NULL;
    const char *why = NULL;
    char first[200] = "";
    int v = -1, has_projects = 0;
    if (rc == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(first, sizeof first, "%s", (const char *)sqlite3_column_text(st, 0));
        else
            snprintf(first, sizeof first, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    } else {
        snprintf(first, sizeof first, "%s", db ? sqlite3_errmsg(db) : "cannot open");
    }
    if (strcmp(first, "ok") != 0) why = first;
    if (!why && sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (!why && sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'projects'", -1,
                                   &st, NULL) == SQLITE_OK) {
        has_projects = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    if (why)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s is not a whole SQLite database (integrity check: %s); refusing it", path,
                       why);
    if (v < 1 || !has_projects)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s is an SQLite file but not a Parley store",
                       path);
    if (v > store_migration_count)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "%s has schema version %d but this parley knows only up to %d: it was "
                       "written by a newer parley; upgrade the binary (refusing it)",
                       path, v, store_migration_count);
    *version = v;
    return 0;
}

static char **push(char **arr, int *n, const char *v)
{
    arr = xrealloc(arr, (size_t)(*n + 1) * sizeof *arr);
    arr[(*n)++] = xstrdup(v);
    return arr;
}

store_table_t *store_tables(store_conn_t *c, int *n, err_t *e)
{
    store_table_t *t = NULL;
    int count = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                           "LIKE 'sqlite_%' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "schema: %s", sqlite3_errmsg(c->db));
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        t = xrealloc(t, (size_t)(count + 1) * sizeof *t);
        memset(&t[count], 0, sizeof *t);
        t[count++].name = xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    for (int i = 0; i < count; i++) {
        char sql[256];
        /* pk order: table_info's pk column is the 1-based position in the key. */
        snprintf(sql, sizeof sql, "SELECT name, pk FROM pragma_table_info('%s') ORDER BY cid",
                 t[i].name);
        if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) goto fail;
        char *pks[16] = {0};
        int maxpk = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *col = (const char *)sqlite3_column_text(st, 0);
            int pk = sqlite3_column_int(st, 1);
            t[i].cols = push(t[i].cols, &t[i].ncols, col);
            if (pk > 0 && pk <= 16) {
                pks[pk - 1] = t[i].cols[t[i].ncols - 1];
                if (pk > maxpk) maxpk = pk;
            }
        }
        sqlite3_finalize(st);
        for (int k = 0; k < maxpk; k++)
            if (pks[k]) t[i].pk = push(t[i].pk, &t[i].npk, pks[k]);
        snprintf(sql, sizeof sql,
                 "SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('%s')",
                 t[i].name);
        if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) goto fail;
        while (sqlite3_step(st) == SQLITE_ROW) {
            t[i].fks = xrealloc(t[i].fks, (size_t)(t[i].nfks + 1) * sizeof *t[i].fks);
            store_fk_t *fk = &t[i].fks[t[i].nfks++];
            const char *to = (const char *)sqlite3_column_text(st, 2);
            fk->from = xstrdup((const char *)sqlite3_column_text(st, 0));
            fk->table = xstrdup((const char *)sqlite3_column_text(st, 1));
            fk->to = xstrdup(to ? to : "id"); /* NULL: the parent's primary key */
        }
        sqlite3_finalize(st);
    }
    *n = count;
    return t;
fail:
    err_set(e, ERR_INTERNAL, "schema: %s", sqlite3_errmsg(c->db));
    store_tables_free(t, count);
    return NULL;
}

void store_tables_free(store_table_t *t, int n)
{
    for (int i = 0; t && i < n; i++) {
        for (int k = 0; k < t[i].ncols; k++)
            free(t[i].cols[k]);
        for (int k = 0; k < t[i].npk; k++)
            free(t[i].pk[k]);
        for (int k = 0; k < t[i].nfks; k++) {
            free(t[i].fks[k].from);
            free(t[i].fks[k].table);
            free(t[i].fks[k].to);
        }
        free(t[i].cols);
        free(t[i].pk);
        free(t[i].fks);
        free(t[i].name);
    }
    free(t);
}

int store_col_type(store_stmt_t *st, int col)
{
    switch (sqlite3_column_type(st->st, col)) {
    case SQLITE_INTEGER:
        return 1;
    case SQLITE_FLOAT:
        return 2;
    case SQLITE_TEXT:
        return 3;
    case SQLITE_BLOB:
        return 4;
    default:
        return 0;
    }
}

double store_col_double(store_stmt_t *st, int col)
{
    return sqlite3_column_double(st->st, col);
}

int store_col_count(store_stmt_t *st)
{
    return sqlite3_column_count(st->st);
}

int64_t store_exec_vals(store_conn_t *c, err_t *e, const char *sql, const store_val_t *v, int n)
{
    char *q = xstrdup(sql);
    for (char *p = q; *p; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') *p = '?';
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, q, -1, &st, NULL);
    free(q);
    for (int i = 0; rc == SQLITE_OK && i < n; i++) {
        switch (v[i].type) {
        case 1:
            rc = sqlite3_bind_int64(st, i + 1, v[i].i);
            break;
        case 2:
            rc = sqlite3_bind_double(st, i + 1, v[i].d);
            break;
        case 3:
            rc = sqlite3_bind_text(st, i + 1, v[i].s, -1, SQLITE_TRANSIENT);
            break;
        case 4:
            rc = sqlite3_bind_blob64(st, i + 1, v[i].s, v[i].len, SQLITE_TRANSIENT);
            break;
        default:
            rc = sqlite3_bind_null(st, i + 1);
            break;
        }
    }
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    int64_t changes = sqlite3_changes64(c->db);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        int ext = sqlite3_extended_errcode(c->db);
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            err_set(e, ERR_ALREADY_EXISTS, "already exists: %s", sqlite3_errmsg(c->db));
        else
            err_set(e, ERR_INTERNAL, "store: %s", sqlite3_errmsg(c->db));
        changes = -1;
    }
    sqlite3_finalize(st);
    return changes;
}

int store_snapshot_begin(store_conn_t *c, err_t *e)
{
    if (c->depth > 0) return err_set(e, ERR_INTERNAL, "store: snapshot inside a transaction");
    if (sqlite3_exec(c->db, "BEGIN DEFERRED", NULL, NULL, NULL) != SQLITE_OK)
        return err_set(e, ERR_INTERNAL, "store: %s", sqlite3_errmsg(c->db));
    return 0;
}

void store_snapshot_end(store_conn_t *c)
{
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
}
