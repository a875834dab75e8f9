/* retention.c: the contact center's retention sweep steps and their per-project settings
 * (retention.h). Each step reads the policy of every project on every call (a change
 * applies on the next pass), finds candidates with reads outside the write transaction,
 * then changes them in one transaction that re-checks each row. Only closed conversations
 * are touched: open ones live in the allocator's memory of a running server. */
#include "contact/retention.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400LL * 1000)

typedef char cid_t[32];

typedef struct {
    cid_t project_id;
    int64_t anonymize_days, delete_days, audit_days;
} policy_t;

/* Every project's policy (defaults where it has no row). NULL with e filled on error. */
static policy_t *load_policies(store_conn_t *c, int *n, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT p.id, COALESCE(s.anonymize_after_days, $1), "
                                   "COALESCE(s.delete_after_days, $2), COALESCE(s.audit_keep_days, "
                                   "$3) FROM projects p LEFT JOIN contact_retention_settings s ON "
                                   "s.project_id = p.id ORDER BY p.id",
                                   "ddd", CONTACT_RETENTION_ANONYMIZE_DAYS,
                                   CONTACT_RETENTION_DELETE_DAYS, CONTACT_RETENTION_AUDIT_DAYS);
    if (!st) return NULL;
    int cap = 16, count = 0, rc;
    policy_t *p = xcalloc((size_t)cap, sizeof *p);
    while ((rc = store_step(st, e)) == 1) {
        if (count == cap) p = xrealloc(p, (size_t)(cap *= 2) * sizeof *p);
        snprintf(p[count].project_id, sizeof p[count].project_id, "%s", store_col_text(st, 0));
        p[count].anonymize_days = store_col_int(st, 1);
        p[count].delete_days = store_col_int(st, 2);
        p[count++].audit_days = store_col_int(st, 3);
    }
    store_done(st);
    if (rc < 0) {
        free(p);
        return NULL;
    }
    *n = count;
    return p;
}

/* Column 0 of a query into ids (at most max). Count or -1. */
static int collect(store_stmt_t *st, cid_t *ids, int max, err_t *e)
{
    if (!st) return -1;
    int n = 0, rc = 0;
    while (n < max && (rc = store_step(st, e)) == 1)
        snprintf(ids[n++], sizeof ids[0], "%s", store_col_text(st, 0));
    store_done(st);
    return rc < 0 ? -1 : n;
}

typedef struct {
    cid_t id;
    int64_t cutoff;
} cand_t;

/* Candidates over every project: sql takes $1 project, $2 cutoff, $3 limit; which picks
 * the policy's days. */
static int candidates(store_conn_t *c, int64_t now, int limit, const char *sql, int which,
                      cand_t *out, err_t *e)
{
    int np = 0;
    policy_t *pols = load_policies(c, &np, e);
    if (!pols) return -1;
    cid_t *ids = xcalloc((size_t)limit, sizeof *ids);
    int n = 0;
    for (int i = 0; i < np && n < limit; i++) {
        int64_t days = which == 0   ? pols[i].anonymize_days
                       : which == 1 ? pols[i].delete_days
                                    : pols[i].audit_days;
        int64_t cutoff = now - days * DAY_MS;
        int got =
            collect(store_query(c, e, sql, "sii", pols[i].project_id, cutoff, (int64_t)(limit - n)),
                    ids, limit - n, e);
        if (got < 0) {
            n = -1;
            break;
        }
        for (int k = 0; k < got; k++, n++) {
            memcpy(out[n].id, ids[k], sizeof ids[k]);
            out[n].cutoff = cutoff;
        }
    }
    free(ids);
    free(pols);
    return n;
}

/* Run body(id, cutoff) for each candidate in one transaction; returns the sum. */
static int64_t in_tx(store_conn_t *c, cand_t *cands, int n,
                     int64_t (*body)(store_conn_t *, const cand_t *, err_t *), err_t *e)
{
    if (n <= 0) return n;
    if (store_begin(c, e) < 0) return -1;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t r = body(c, &cands[i], e);
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

/* ---- conversations ---- */

static int64_t anonymize_one(store_conn_t *c, const cand_t *k, err_t *e)
{
    /* Re-check: still closed, not yet anonymized (a DPO or a second sweeper may have been
     * first). The literal matches the partial index's predicate. */
    int64_t r = store_exec(c, e,
                           "UPDATE contact_conversations SET conversation_id = $2, contact_id = "
                           "CASE WHEN contact_id = '' THEN '' ELSE $2 END, wrap_up = CASE WHEN "
                           "wrap_up IS NULL THEN NULL ELSE $2 END WHERE id = $1 AND status = "
                           "'closed' AND conversation_id <> '[anonymized]' AND closed_at < $3",
                           "ssi", k->id, CONTACT_RETENTION_PLACEHOLDER, k->cutoff);
    if (r <= 0) return r;
    if (store_exec(c, e, "UPDATE contact_notes SET text = $2 WHERE conversation_id = $1", "ss",
                   k->id, CONTACT_RETENTION_PLACEHOLDER) < 0)
        return -1;
    return r;
}

int64_t contact_retention_anonymize(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    cand_t *k = xcalloc((size_t)limit, sizeof *k);
    int n = candidates(c, now_ms, limit,
                       "SELECT id FROM contact_conversations WHERE project_id = $1 AND status = "
                       "'closed' AND conversation_id <> '[anonymized]' AND closed_at < $2 ORDER "
                       "BY closed_at LIMIT $3",
                       0, k, e);
    int64_t r = in_tx(c, k, n, anonymize_one, e);
    free(k);
    return r;
}

static int64_t delete_one(store_conn_t *c, const cand_t *k, err_t *e)
{
    if (store_exec(c, e,
                   "DELETE FROM contact_notes WHERE conversation_id = $1 AND EXISTS (SELECT 1 FROM "
                   "contact_conversations WHERE id = $1 AND status = 'closed' AND closed_at < $2)",
                   "si", k->id, k->cutoff) < 0)
        return -1;
    return store_exec(c, e,
                      "DELETE FROM contact_conversations WHERE id = $1 AND status = 'closed' AND "
                      "closed_at < $2",
                      "si", k->id, k->cutoff);
}

int64_t contact_retention_delete(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    cand_t *k = xcalloc((size_t)limit, sizeof *k);
    int n = candidates(c, now_ms, limit,
                       "SELECT id FROM contact_conversations WHERE project_id = $1 AND status = "
                       "'closed' AND closed_at < $2 ORDER BY closed_at LIMIT $3",
                       1, k, e);
    int64_t r = in_tx(c, k, n, delete_one, e);
    free(k);
    return r;
}

/* ---- real-time events ---- */

#define EVENT_ANON_PREFIX "{\"anonymized\":true"

/* Events: first delete what is past delete_after_days, then reduce what is past
 * anonymize_after_days. The id is the event's (an integer, kept as text). */
static int64_t event_reduce(store_conn_t *c, const cand_t *k, err_t *e)
{
    store_stmt_t *st = store_query(c, e, "SELECT data FROM contact_events WHERE id = $1", "i",
                                   (int64_t)strtoll(k->id, NULL, 10));
    if (!st) return -1;
    int rc = store_step(st, e);
    json_t *data = rc == 1 ? json_loads(store_col_text(st, 0), 0, NULL) : NULL;
    store_done(st);
    if (rc <= 0) return rc;
    const char *conv = json_string_value(json_object_get(data, "conversation_id"));
    if (!conv)
        conv = json_string_value(json_object_get(json_object_get(data, "conversation"), "id"));
    json_t *small = json_pack("{s:b}", "anonymized", 1);
    if (conv) json_object_set_new(small, "conversation_id", json_string(conv));
    char *text = json_dumps(small, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(small);
    json_decref(data);
    int64_t r = store_exec(c, e, "UPDATE contact_events SET data = $2 WHERE id = $1", "is",
                           (int64_t)strtoll(k->id, NULL, 10), text);
    free(text);
    return r;
}

int64_t contact_retention_events(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    int np = 0;
    policy_t *pols = load_policies(c, &np, e);
    if (!pols) return -1;
    int64_t total = 0;
    for (int i = 0; i < np && total < limit; i++) {
        int64_t r = store_exec(c, e,
                               "DELETE FROM contact_events WHERE id IN (SELECT id FROM "
                               "contact_events WHERE project_id = $1 AND created_at < $2 ORDER BY "
                               "id LIMIT $3)",
                               "sii", pols[i].project_id, now_ms - pols[i].delete_days * DAY_MS,
                               (int64_t)(limit - total));
        if (r < 0) {
            free(pols);
            return -1;
        }
        total += r;
    }
    cand_t *k = xcalloc((size_t)limit, sizeof *k);
    int n = 0;
    for (int i = 0; i < np && total + n < limit; i++) {
        int64_t cutoff = now_ms - pols[i].anonymize_days * DAY_MS;
        store_stmt_t *st =
            store_query(c, e,
                        "SELECT id FROM contact_events WHERE project_id = $1 AND "
                        "created_at < $2 AND kind <> 'stats' AND data NOT LIKE "
                        "'" EVENT_ANON_PREFIX "%' ORDER BY id LIMIT $3",
                        "sii", pols[i].project_id, cutoff, (int64_t)(limit - total - n));
        if (!st) {
            n = -1;
            break;
        }
        int rc;
        while ((rc = store_step(st, e)) == 1) {
            snprintf(k[n].id, sizeof k[n].id, "%lld", (long long)store_col_int(st, 0));
            k[n++].cutoff = cutoff;
        }
        store_done(st);
        if (rc < 0) {
            n = -1;
            break;
        }
    }
    free(pols);
    int64_t r = in_tx(c, k, n, event_reduce, e);
    free(k);
    return r < 0 ? -1 : total + r;
}

/* ---- audit log ---- */

int64_t contact_retention_audit(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    int np = 0;
    policy_t *pols = load_policies(c, &np, e);
    if (!pols) return -1;
    int64_t total = 0;
    for (int i = 0; i < np && total < limit; i++) {
        int64_t r = store_exec(c, e,
                               "DELETE FROM contact_audit WHERE id IN (SELECT id FROM "
                               "contact_audit WHERE project_id = $1 AND at < $2 ORDER BY at LIMIT "
                               "$3)",
                               "sii", pols[i].project_id, now_ms - pols[i].audit_days * DAY_MS,
                               (int64_t)(limit - total));
        if (r < 0) {
            total = -1;
            break;
        }
        total += r;
    }
    free(pols);
    return total;
}

/* ---- settings ---- */

static int read_settings(store_conn_t *c, const char *project_id, int64_t v[3], err_t *e)
{
    v[0] = CONTACT_RETENTION_ANONYMIZE_DAYS;
    v[1] = CONTACT_RETENTION_DELETE_DAYS;
    v[2] = CONTACT_RETENTION_AUDIT_DAYS;
    store_stmt_t *st = store_query(c, e,
                                   "SELECT anonymize_after_days, delete_after_days, "
                                   "audit_keep_days FROM contact_retention_settings WHERE "
                                   "project_id = $1",
                                   "s", project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1)
        for (int i = 0; i < 3; i++)
            v[i] = store_col_int(st, i);
    store_done(st);
    return rc < 0 ? -1 : 0;
}

static const char *const fields[] = {"anonymize_after_days", "delete_after_days", "audit_keep_days",
                                     NULL};

json_t *contact_retention_settings_get(store_conn_t *c, const char *project_id, err_t *e)
{
    int64_t v[3];
    if (read_settings(c, project_id, v, e) < 0) return NULL;
    return json_pack("{s:I, s:I, s:I}", fields[0], (json_int_t)v[0], fields[1], (json_int_t)v[1],
                     fields[2], (json_int_t)v[2]);
}

int contact_retention_settings_patch(store_conn_t *c, const char *project_id, json_t *value,
                                     err_t *e)
{
    if (!json_is_object(value))
        return err_set(e, ERR_INVALID_ARGUMENT, "contact_center_retention must be an object");
    const char *key;
    json_t *x;
    json_object_foreach(value, key, x)
    {
        int known = 0;
        for (int i = 0; fields[i]; i++)
            known |= strcmp(key, fields[i]) == 0;
        if (!known)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "unknown field \"contact_center_retention.%.60s\": expected "
                           "anonymize_after_days, delete_after_days and audit_keep_days",
                           key);
    }
    int64_t v[3];
    if (read_settings(c, project_id, v, e) < 0) return -1;
    for (int i = 0; fields[i]; i++) {
        char name[64];
        snprintf(name, sizeof name, "contact_center_retention.%s", fields[i]);
        if (jsonx_int(value, fields[i], name, 1, CONTACT_RETENTION_MAX_DAYS, &v[i], e) < 0)
            return -1;
    }
    if (v[0] > v[1])
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "contact_center_retention.anonymize_after_days (%lld) must not exceed "
                       "delete_after_days (%lld)",
                       (long long)v[0], (long long)v[1]);
    return store_exec(c, e,
                      "INSERT INTO contact_retention_settings (project_id, anonymize_after_days, "
                      "delete_after_days, audit_keep_days, updated_at) VALUES ($1, $2, $3, $4, "
                      "$5) ON CONFLICT (project_id) DO UPDATE SET anonymize_after_days = $2, "
                      "delete_after_days = $3, audit_keep_days = $4, updated_at = $5",
                      "siiii", project_id, v[0], v[1], v[2], clock_now_ms()) < 0
               ? -1
               : 0;
}
