/* export.c: one project's data as JSON Lines, and back. The first line is a header
 * {"kind":"parley_export","format":1,"schema_version","project_id","exported_at",
 * "secrets","key_check"}; then one line per row, {"kind": TABLE, "record": {column:
 * value}}, parents before children, over the project scope (scope.c), so tables added
 * later travel without code changes; work queues (outbox) stay behind. All rows come
 * from one read snapshot. Values: integers and text as JSON, NULL as null,
 * blobs as {"$base64": "..."}. Sealed columns (*_sealed) are written as stored, with a
 * key_check naming the key that opens them, or opened as {"$plain": "..."} when asked;
 * import re-seals plain ones under its own data dir's key. */
#define _GNU_SOURCE
#include "privacy/privacy_internal.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/sec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_FORMAT 1

/* Work queues, not project data: pending provider sends and callbacks would go out a
 * second time from the copy. */
static int not_exported(const char *table)
{
    return strcmp(table, "outbox") == 0;
}

static int is_sealed(const char *col)
{
    size_t n = strlen(col);
    return n > 7 && strcmp(col + n - 7, "_sealed") == 0;
}

/* A short public fingerprint of the sealing key (not the key). */
static void key_check(const uint8_t seal_key[32], char out[32])
{
    static const char label[] = "parley export key check v1";
    uint8_t h[SEC_HASH_LEN];
    sec_hash(seal_key, label, sizeof label - 1, h);
    sec_b64url_encode(h, 12, out, 32);
}

int privacy_export(store_conn_t *c, const uint8_t seal_key[32], const char *project_id,
                   int plain_secrets, FILE *out, err_t *e)
{
    store_stmt_t *st = store_query(c, e, "SELECT 1 FROM projects WHERE id = $1", "s", project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    store_done(st);
    if (rc < 0) return -1;
    if (rc == 0) return err_set(e, ERR_NOT_FOUND, "project %s not found", project_id);
    privacy_scope_t sc;
    if (privacy_scope_build(c, &sc, e) < 0) return -1;
    /* One snapshot for every table: rows written meanwhile are all in or all out. */
    if (store_snapshot_begin(c, e) < 0) {
        privacy_scope_free(&sc);
        return -1;
    }
    char when[32], check[32];
    clock_format_rfc3339(clock_now_ms(), when, sizeof when);
    key_check(seal_key, check);
    json_t *hdr = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:s}", "kind", "parley_export",
                            "format", EXPORT_FORMAT, "schema_version", store_schema_latest(),
                            "project_id", project_id, "exported_at", when, "secrets",
                            plain_secrets ? "plain" : "sealed", "key_check", check);
    char *line = json_dumps(hdr, JSON_COMPACT);
    fprintf(out, "%s\n", line);
    free(line);
    json_decref(hdr);
    rc = 0;
    for (int k = 0; k < sc.n && rc == 0; k++) {
        const store_table_t *t = &sc.tables[sc.order[k]];
        if (not_exported(t->name)) continue;
        buf_t q;
        buf_init(&q);
        buf_puts(&q, "SELECT ");
        for (int i = 0; i < t->ncols; i++)
            buf_printf(&q, "%s\"%s\"", i ? ", " : "", t->cols[i]);
        buf_printf(&q, " FROM %s WHERE %s", t->name, sc.pred[k]);
        for (int i = 0; i < t->npk; i++)
            buf_printf(&q, "%s\"%s\"", i ? ", " : " ORDER BY ", t->pk[i]);
        st = store_query(c, e, q.data, "s", project_id);
        buf_free(&q);
        if (!st) {
            rc = -1;
            break;
        }
        while ((rc = store_step(st, e)) == 1) {
            json_t *rec = json_object();
            for (int i = 0; i < t->ncols; i++) {
                json_t *v;
                switch (store_col_type(st, i)) {
                case 1:
                    v = json_integer(store_col_int(st, i));
                    break;
                case 2:
                    v = json_real(store_col_double(st, i));
                    break;
                case 3: {
                    const char *s = store_col_text(st, i);
                    char *opened =
                        plain_secrets && is_sealed(t->cols[i]) ? sec_open(seal_key, s) : NULL;
                    if (plain_secrets && is_sealed(t->cols[i]) && !opened) {
                        json_decref(rec);
                        store_done(st);
                        store_snapshot_end(c);
                        privacy_scope_free(&sc);
                        return err_set(e, ERR_FAILED_PRECONDITION,
                                       "a sealed %s.%s does not open with this data dir's key",
                                       t->name, t->cols[i]);
                    }
                    v = opened ? json_pack("{s:s}", "$plain", opened) : json_string(s);
                    free(opened);
                    break;
                }
                case 4: {
                    size_t len;
                    const void *p = store_col_blob(st, i, &len);
                    char *b64 = xmalloc(len * 4 / 3 + 8);
                    sec_b64_encode(p, len, b64, len * 4 / 3 + 8);
                    v = json_pack("{s:s}", "$base64", b64);
                    free(b64);
                    break;
                }
                default:
                    v = json_null();
                    break;
                }
                json_object_set_new(rec, t->cols[i], v ? v : json_null());
            }
            json_t *row = json_pack("{s:s, s:o}", "kind", t->name, "record", rec);
            line = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(row);
            if (!line || fprintf(out, "%s\n", line) < 0) {
                free(line);
                rc = err_set(e, ERR_INVALID_ARGUMENT, "cannot write the export");
                break;
            }
            free(line);
        }
        store_done(st);
    }
    store_snapshot_end(c);
    privacy_scope_free(&sc);
    if (rc == 0 && fflush(out) != 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot write the export");
    return rc < 0 ? -1 : 0;
}

static const store_table_t *table_named(const privacy_scope_t *sc, const char *name)
{
    for (int i = 0; i < sc->ntables; i++)
        if (strcmp(sc->tables[i].name, name) == 0) return &sc->tables[i];
    return NULL;
}

static int col_index(const store_table_t *t, const char *col)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i], col) == 0) return i;
    return -1;
}

/* Insert one record; fills e with a precise error naming line and record. */
static int import_record(store_conn_t *c, const privacy_scope_t *sc, const uint8_t seal_key[32],
                         int sealed_ok, json_t *row, long lineno, err_t *e)
{
    const char *kind = json_string_value(json_object_get(row, "kind"));
    json_t *rec = json_object_get(row, "record");
    if (!kind || !json_is_object(rec))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "line %ld: expected {\"kind\": TABLE, \"record\": {...}}", lineno);
    const store_table_t *t = table_named(sc, kind);
    if (!t)
        return err_set(e, ERR_INVALID_ARGUMENT, "line %ld: unknown kind \"%.60s\" (no such table)",
                       lineno, kind);
    size_t n = json_object_size(rec);
    store_val_t *vals = xcalloc(n ? n : 1, sizeof *vals);
    char **owned = xcalloc(n ? n : 1, sizeof *owned);
    buf_t q, ph;
    buf_init(&q);
    buf_init(&ph);
    buf_printf(&q, "INSERT INTO %s (", t->name);
    const char *key;
    json_t *v;
    int i = 0, rc = 0;
    json_object_foreach(rec, key, v)
    {
        if (col_index(t, key) < 0) {
            rc = err_set(e, ERR_INVALID_ARGUMENT, "line %ld: %s has no column \"%.60s\"", lineno,
                         t->name, key);
            break;
        }
        buf_printf(&q, "%s\"%s\"", i ? ", " : "", key);
        buf_printf(&ph, "%s$%d", i ? ", " : "", i + 1);
        store_val_t *sv = &vals[i];
        if (json_is_integer(v)) {
            sv->type = 1;
            sv->i = json_integer_value(v);
        } else if (json_is_real(v)) {
            sv->type = 2;
            sv->d = json_real_value(v);
        } else if (json_is_string(v)) {
            sv->type = 3;
            sv->s = json_string_value(v);
            if (is_sealed(key) && !sealed_ok) {
                rc = err_set(e, ERR_FAILED_PRECONDITION,
                             "line %ld: %s.%s is sealed with another data dir's key: import "
                             "with that key (copy its secret.key or set PARLEY_SECRET_KEY) or "
                             "export again with --plain-secrets",
                             lineno, t->name, key);
                break;
            }
        } else if (json_is_object(v) && json_is_string(json_object_get(v, "$base64"))) {
            const char *b64 = json_string_value(json_object_get(v, "$base64"));
            size_t cap = strlen(b64) + 4;
            owned[i] = xmalloc(cap);
            int len = sec_b64_decode(b64, owned[i], cap);
            if (len < 0) {
                rc = err_set(e, ERR_INVALID_ARGUMENT, "line %ld: %s.%s is not valid base64", lineno,
                             t->name, key);
                break;
            }
            sv->type = 4;
            sv->s = owned[i];
            sv->len = (size_t)len;
        } else if (json_is_object(v) && json_is_string(json_object_get(v, "$plain")) &&
                   is_sealed(key)) {
            owned[i] = sec_seal(seal_key, json_string_value(json_object_get(v, "$plain")));
            sv->type = 3;
            sv->s = owned[i];
        } else if (json_is_null(v)) {
            sv->type = 0;
        } else {
            rc = err_set(e, ERR_INVALID_ARGUMENT, "line %ld: %s.%s has a value of the wrong type",
                         lineno, t->name, key);
            break;
        }
        i++;
    }
    if (rc == 0) {
        buf_printf(&q, ") VALUES (%s)", ph.data ? ph.data : "");
        if (store_exec_vals(c, e, q.data, vals, i) < 0) {
            err_t inner = *e;
            json_t *id = t->npk ? json_object_get(rec, t->pk[0]) : NULL;
            char idtxt[64] = "";
            if (json_is_string(id)) snprintf(idtxt, sizeof idtxt, " %s", json_string_value(id));
            rc = err_set(
                e, inner.code == ERR_ALREADY_EXISTS ? ERR_ALREADY_EXISTS : ERR_INVALID_ARGUMENT,
                "line %ld: %s%s: %s%s", lineno, t->name, idtxt, inner.message,
                inner.code == ERR_ALREADY_EXISTS
                    ? " (this data dir already holds that id; nothing was imported)"
                    : "");
        }
    }
    for (size_t k = 0; k < n; k++)
        free(owned[k]);
    free(owned);
    free(vals);
    buf_free(&q);
    buf_free(&ph);
    return rc;
}

json_t *privacy_import(store_conn_t *c, const uint8_t seal_key[32], FILE *in, err_t *e)
{
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    ssize_t len = getline(&line, &cap, in);
    json_t *hdr = len > 0 ? json_loads(line, 0, NULL) : NULL;
    const char *kind = json_string_value(json_object_get(hdr, "kind"));
    json_t *result = NULL;
    lineno = 1;
    if (!kind || strcmp(kind, "parley_export") != 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "not a Parley export: the first line must be {\"kind\":\"parley_export\",...}");
        goto out;
    }
    if (json_integer_value(json_object_get(hdr, "format")) != EXPORT_FORMAT) {
        err_set(e, ERR_INVALID_ARGUMENT, "export format %lld is not supported (expected %d)",
                (long long)json_integer_value(json_object_get(hdr, "format")), EXPORT_FORMAT);
        goto out;
    }
    int64_t ver = json_integer_value(json_object_get(hdr, "schema_version"));
    if (ver > store_schema_latest()) {
        err_set(e, ERR_FAILED_PRECONDITION,
                "the export has schema version %lld but this parley knows only up to %d: "
                "import it with a newer parley",
                (long long)ver, store_schema_latest());
        goto out;
    }
    char check[32];
    key_check(seal_key, check);
    const char *theirs = json_string_value(json_object_get(hdr, "key_check"));
    int sealed_ok = theirs && strcmp(theirs, check) == 0;
    privacy_scope_t sc;
    if (privacy_scope_build(c, &sc, e) < 0) goto out;
    if (store_begin(c, e) < 0) {
        privacy_scope_free(&sc);
        goto out;
    }
    long records = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, in)) > 0) {
        lineno++;
        if (len == 1 && line[0] == '\n') continue;
        json_error_t je;
        json_t *row = json_loads(line, 0, &je);
        if (!row) {
            rc = err_set(e, ERR_INVALID_ARGUMENT, "line %ld is not JSON: %s", lineno, je.text);
            break;
        }
        rc = import_record(c, &sc, seal_key, sealed_ok, row, lineno, e);
        json_decref(row);
        records++;
    }
    privacy_scope_free(&sc);
    if (rc == 0 && store_commit(c, e) == 0) {
        result = json_pack("{s:s?, s:I}", "project_id",
                           json_string_value(json_object_get(hdr, "project_id")), "records",
                           (json_int_t)records);
    } else if (rc != 0) {
        store_rollback(c);
    }
out:
    free(line);
    json_decref(hdr);
    return result;
}
