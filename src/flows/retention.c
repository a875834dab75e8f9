/* retention.c: Flows' retention sweep steps (retention.h). Candidates are read outside
 * the write transaction; the transaction rewrites or deletes them by id, re-checking the
 * age (a wait resumed meanwhile is simply gone; a row's msg never changes in place). */
#include "flows/retention.h"

#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS    (86400LL * 1000)
#define ANON_MARK "\"_anonymized\":true"

static const char *const personal_keys[] = {"contactId",         "contact_id",
                                            "conversationId",    "conversation_id",
                                            "channelIdentity",   "channel_identity",
                                            "channelIdentities", "channel_identities",
                                            "identity",          NULL};

int flows_retention_strip(json_t *msg)
{
    int n = 0;
    if (json_is_object(msg)) {
        for (int i = 0; personal_keys[i]; i++)
            if (json_object_del(msg, personal_keys[i]) == 0) n++;
        const char *k;
        json_t *v;
        json_object_foreach(msg, k, v) n += flows_retention_strip(v);
    } else if (json_is_array(msg)) {
        size_t i;
        json_t *v;
        json_array_foreach(msg, i, v) n += flows_retention_strip(v);
    }
    return n;
}

typedef struct {
    char id[32];
    int wait; /* 1: flows_waits, 0: flows_inbox */
    char *msg;
} row_t;

/* Read up to max rows (id, msg) of one table into rows, msg already anonymized. */
static int read_rows(store_stmt_t *st, int wait, row_t *rows, int max, err_t *e)
{
    if (!st) return -1;
    int n = 0, rc = 0;
    while (n < max && (rc = store_step(st, e)) == 1) {
        json_t *msg = json_loads(store_col_text(st, 1), 0, NULL);
        if (!json_is_object(msg)) {
            json_decref(msg);
            msg = json_object();
        }
        flows_retention_strip(msg);
        json_object_set_new(msg, "_anonymized", json_true());
        snprintf(rows[n].id, sizeof rows[n].id, "%s", store_col_text(st, 0));
        rows[n].wait = wait;
        rows[n++].msg = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
    }
    store_done(st);
    return rc < 0 && n < max ? -1 : n;
}

/* Rewrite rows inside the caller's transaction; cutoff 0 = no age re-check. */
static int64_t write_rows(store_conn_t *c, row_t *rows, int n, int64_t cutoff, err_t *e)
{
    int64_t total = 0;
    for (int i = 0; total >= 0 && i < n; i++) {
        int64_t r =
            rows[i].wait
                ? store_exec(c, e,
                             "UPDATE flows_waits SET msg = $2, contact_id = '[anonymized]:' || "
                             "id, conversation_id = '' WHERE id = $1 AND ($3 = 0 OR created_at < "
                             "$3)",
                             "ssi", rows[i].id, rows[i].msg, cutoff)
                : store_exec(c, e,
                             "UPDATE flows_inbox SET msg = $2 WHERE id = $1 AND ($3 = 0 OR "
                             "created_at < $3)",
                             "ssi", rows[i].id, rows[i].msg, cutoff);
        total = r < 0 ? -1 : total + r;
    }
    return total;
}

static void free_rows(row_t *rows, int n)
{
    for (int i = 0; i < n; i++)
        free(rows[i].msg);
    free(rows);
}

int64_t flows_retention_anonymize(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    int64_t cutoff = now_ms - FLOWS_RETENTION_ANONYMIZE_DAYS * DAY_MS;
    row_t *rows = xcalloc((size_t)limit, sizeof *rows);
    int n = read_rows(store_query(c, e,
                                  "SELECT id, msg FROM flows_waits WHERE created_at < $1 AND msg "
                                  "NOT LIKE '%" ANON_MARK "%' ORDER BY created_at LIMIT $2",
                                  "id", cutoff, limit),
                      1, rows, limit, e);
    if (n >= 0 && n < limit) {
        int m = read_rows(store_query(c, e,
                                      "SELECT id, msg FROM flows_inbox WHERE created_at < $1 AND "
                                      "msg NOT LIKE '%" ANON_MARK "%' ORDER BY created_at LIMIT $2",
                                      "id", cutoff, limit - n),
                          0, rows + n, limit - n, e);
        n = m < 0 ? -1 : n + m;
    }
    int64_t total = n;
    if (n > 0) {
        if (store_begin(c, e) < 0) {
            total = -1;
        } else if ((total = write_rows(c, rows, n, cutoff, e)) < 0 || store_commit(c, e) < 0) {
            store_rollback(c);
            total = -1;
        }
    }
    free_rows(rows, n > 0 ? n : 0);
    return total;
}

int flows_retention_forget_contact(store_conn_t *c, const char *project_id, const char *contact_id,
                                   err_t *e)
{
    enum { MAX = 1000 };
    row_t *rows = xcalloc(MAX, sizeof *rows);
    int n = read_rows(store_query(c, e,
                                  "SELECT id, msg FROM flows_waits WHERE project_id = $1 AND "
                                  "contact_id = $2",
                                  "ss", project_id, contact_id),
                      1, rows, MAX, e);
    if (n >= 0 && n < MAX) {
        int m = read_rows(store_query(c, e,
                                      "SELECT id, msg FROM flows_inbox WHERE project_id = $1 AND "
                                      "msg LIKE '%' || $2 || '%'",
                                      "ss", project_id, contact_id),
                          0, rows + n, MAX - n, e);
        n = m < 0 ? -1 : n + m;
    }
    int64_t r = n < 0 ? -1 : write_rows(c, rows, n, 0, e);
    free_rows(rows, n > 0 ? n : 0);
    return r < 0 ? -1 : 0;
}

int64_t flows_retention_delete(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    int64_t cutoff = now_ms - FLOWS_RETENTION_DELETE_DAYS * DAY_MS;
    static const char *const sql[] = {
        "DELETE FROM flows_waits WHERE id IN (SELECT id FROM flows_waits WHERE created_at < $1 "
        "ORDER BY created_at LIMIT $2)",
        "DELETE FROM flows_inbox WHERE id IN (SELECT id FROM flows_inbox WHERE created_at < $1 "
        "ORDER BY created_at LIMIT $2)",
        "DELETE FROM flows_handovers WHERE (project_id, conversation_id) IN (SELECT project_id, "
        "conversation_id FROM flows_handovers WHERE created_at < $1 ORDER BY created_at LIMIT "
        "$2)",
    };
    if (store_begin(c, e) < 0) return -1;
    int64_t total = 0;
    for (int i = 0; i < 3 && total < limit; i++) {
        int64_t r = store_exec(c, e, sql[i], "ii", cutoff, (int64_t)(limit - total));
        if (r < 0) {
            store_rollback(c);
            return -1;
        }
        total += r;
    }
    if (store_commit(c, e) < 0) {
        store_rollback(c);
        return -1;
    }
    return total;
}
