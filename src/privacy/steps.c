/* steps.c: the built-in sweep steps (see privacy.h for the contract). The Conversation
 * API's app retention (messages, conversations), the project-level contact retention,
 * and the purge of deleted projects after their grace period. Each call does at most
 * `limit` items in one transaction and re-reads the policies, so a changed policy
 * applies on the next pass. */
#define _GNU_SOURCE
#include "privacy/privacy_internal.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char id_t32[32];

/* Dispatch-mode messages with ttl_days 0 ("not stored") are still kept this long, so
 * that delivery receipts arriving after the send find their message. */
#define DISPATCH_HOLD_MS (3600LL * 1000)

static int64_t grace_ms = 30 * PRIVACY_DAY_MS;

void privacy_configure(const config_t *cfg)
{
    grace_ms = cfg->privacy_grace_days * PRIVACY_DAY_MS;
}

int64_t privacy_grace_days_ms(void)
{
    return grace_ms;
}

/* Collect column 0 of a query into ids (at most max). Returns count or -1. */
static int collect(store_stmt_t *st, id_t32 *ids, int max, err_t *e)
{
    if (!st) return -1;
    int n = 0, rc = 0;
    while (n < max && (rc = store_step(st, e)) == 1)
        snprintf(ids[n++], sizeof ids[0], "%s", store_col_text(st, 0));
    store_done(st);
    return rc < 0 && n < max ? -1 : n;
}

/* Pending callbacks whose payload names one of the removed ids: never send them. */
static int drop_callbacks(store_conn_t *c, const char *project_id, id_t32 *ids, int n, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT id, payload FROM outbox WHERE project_id = $1 AND kind = 'callback'", "s",
        project_id);
    if (!st) return -1;
    int cap = 16, nd = 0, rc;
    id_t32 *drop = xcalloc((size_t)cap, sizeof *drop);
    while ((rc = store_step(st, e)) == 1) {
        const char *payload = store_col_text(st, 1);
        for (int i = 0; payload && i < n; i++)
            if (strstr(payload, ids[i])) {
                if (nd == cap) drop = xrealloc(drop, (size_t)(cap *= 2) * sizeof *drop);
                snprintf(drop[nd++], sizeof drop[0], "%s", store_col_text(st, 0));
                break;
            }
    }
    store_done(st);
    for (int i = 0; rc == 0 && i < nd; i++)
        if (store_exec(c, e, "DELETE FROM outbox WHERE id = $1", "s", drop[i]) < 0) rc = -1;
    free(drop);
    return rc;
}

int64_t privacy_delete_messages(store_conn_t *c, const char *project_id, id_t32 *ids, int n,
                                int keep_callbacks, err_t *e)
{
    int64_t removed = 0;
    for (int i = 0; i < n; i++) {
        int64_t r;
        if (store_exec(c, e, "DELETE FROM inbound_seen WHERE message_id = $1", "s", ids[i]) < 0 ||
            store_exec(c, e, "DELETE FROM outbox WHERE target_id = $1 AND kind = 'deliver'", "s",
                       ids[i]) < 0 ||
            store_exec(c, e, "DELETE FROM message_refs WHERE message_id = $1", "s", ids[i]) < 0 ||
            (r = store_exec(c, e, "DELETE FROM messages WHERE id = $1", "s", ids[i])) < 0)
            return -1;
        removed += r;
    }
    if (!keep_callbacks && n > 0 && drop_callbacks(c, project_id, ids, n, e) < 0) return -1;
    return removed;
}

typedef struct {
    char id[32], project_id[32], type[40];
    int64_t ttl_days, dispatch_ttl_days;
} app_policy_t;

static app_policy_t *load_apps(store_conn_t *c, int *n, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, project_id, retention_type, retention_ttl_days, "
                                   "dispatch_ttl_days FROM apps ORDER BY id",
                                   "");
    if (!st) return NULL;
    int cap = 16, count = 0, rc;
    app_policy_t *a = xcalloc((size_t)cap, sizeof *a);
    while ((rc = store_step(st, e)) == 1) {
        if (count == cap) a = xrealloc(a, (size_t)(cap *= 2) * sizeof *a);
        app_policy_t *p = &a[count++];
        snprintf(p->id, sizeof p->id, "%s", store_col_text(st, 0));
        snprintf(p->project_id, sizeof p->project_id, "%s", store_col_text(st, 1));
        snprintf(p->type, sizeof p->type, "%s", store_col_text(st, 2));
        p->ttl_days = store_col_int(st, 3);
        p->dispatch_ttl_days = store_col_int(st, 4);
    }
    store_done(st);
    if (rc < 0) {
        free(a);
        return NULL;
    }
    *n = count;
    return a;
}

typedef struct {
    char project_id[32];
    int start, n, keep_callbacks;
} group_t;

/* MESSAGE_EXPIRE_POLICY on conversation-mode messages; dispatch retention on
 * dispatch-mode messages (every app). Candidates are read outside the write transaction
 * (WAL readers do not block writers); the transaction only deletes. */
static int64_t step_messages(store_conn_t *c, int64_t now, int limit, err_t *e)
{
    int napps = 0;
    app_policy_t *apps = load_apps(c, &napps, e);
    if (!apps) return -1;
    id_t32 *ids = xcalloc((size_t)limit, sizeof *ids);
    group_t *groups = xcalloc((size_t)napps * 2 + 1, sizeof *groups);
    int n = 0, ng = 0;
    for (int i = 0; i < napps && n < limit; i++) {
        int got;
        if (strcmp(apps[i].type, "MESSAGE_EXPIRE_POLICY") == 0) {
            got = collect(store_query(c, e,
                                      "SELECT id FROM messages WHERE app_id = $1 AND accept_time "
                                      "< $2 AND processing_mode <> 'DISPATCH' ORDER BY "
                                      "accept_time LIMIT $3",
                                      "sid", apps[i].id, now - apps[i].ttl_days * PRIVACY_DAY_MS,
                                      limit - n),
                          ids + n, limit - n, e);
            if (got < 0) goto fail;
            if (got > 0) {
                groups[ng] = (group_t){.start = n, .n = got};
                snprintf(groups[ng++].project_id, 32, "%s", apps[i].project_id);
            }
            n += got;
        }
        if (n >= limit) break;
        int64_t ttl = apps[i].dispatch_ttl_days;
        int64_t cutoff = ttl > 0 ? now - ttl * PRIVACY_DAY_MS : now - DISPATCH_HOLD_MS;
        /* ttl 0: not before its delivery is done (the worker still needs it). */
        got = collect(store_query(c, e,
                                  "SELECT id FROM messages m WHERE app_id = $1 AND accept_time < "
                                  "$2 AND processing_mode = 'DISPATCH' AND ($4 > 0 OR NOT EXISTS "
                                  "(SELECT 1 FROM outbox o WHERE o.target_id = m.id AND o.kind = "
                                  "'deliver')) ORDER BY accept_time LIMIT $3",
                                  "sidi", apps[i].id, cutoff, limit - n, ttl),
                      ids + n, limit - n, e);
        if (got < 0) goto fail;
        /* ttl 0: its delivery callbacks are still sent (only the message is not kept). */
        if (got > 0) {
            groups[ng] = (group_t){.start = n, .n = got, .keep_callbacks = ttl == 0};
            snprintf(groups[ng++].project_id, 32, "%s", apps[i].project_id);
        }
        n += got;
    }
    int64_t total = 0;
    if (n > 0) {
        if (store_begin(c, e) < 0) goto fail;
        for (int g = 0; g < ng && total >= 0; g++) {
            int64_t r = privacy_delete_messages(c, groups[g].project_id, ids + groups[g].start,
                                                groups[g].n, groups[g].keep_callbacks, e);
            total = r < 0 ? -1 : total + r;
        }
        if (total < 0 || store_commit(c, e) < 0) {
            store_rollback(c);
            goto fail;
        }
    }
    free(groups);
    free(ids);
    free(apps);
    return total;
fail:
    free(groups);
    free(ids);
    free(apps);
    return -1;
}

/* Remove a conversation or contact with all its messages, at most room messages at a
 * time: returns messages removed, and sets *whole when the parent went too. */
static int64_t remove_parent(store_conn_t *c, const char *project_id, const char *col,
                             const char *id, int room, int *whole, err_t *e)
{
    const char *sql = strcmp(col, "contact_id") == 0
                          ? "SELECT id FROM messages WHERE contact_id = $1 OR conversation_id IN "
                            "(SELECT id FROM conversations WHERE contact_id = $1) LIMIT $2"
                          : "SELECT id FROM messages WHERE conversation_id = $1 LIMIT $2";
    id_t32 *ids = xcalloc((size_t)room, sizeof *ids);
    int got = collect(store_query(c, e, sql, "sd", id, room), ids, room, e);
    int64_t r = got < 0 ? -1 : privacy_delete_messages(c, project_id, ids, got, 0, e);
    free(ids);
    if (r < 0) return -1;
    *whole = 0;
    if (got < room) {
        /* No message left: the parent goes (its conversations, identities cascade). */
        if (strcmp(col, "contact_id") == 0) {
            if (store_exec(c, e, "DELETE FROM contacts WHERE id = $1", "s", id) < 0) return -1;
        } else if (store_exec(c, e, "DELETE FROM conversations WHERE id = $1", "s", id) < 0) {
            return -1;
        }
        id_t32 one;
        snprintf(one, sizeof one, "%s", id);
        if (drop_callbacks(c, project_id, &one, 1, e) < 0) return -1;
        *whole = 1;
    }
    return r;
}

/* A conversation or contact found expired by a read outside the transaction. */
typedef struct {
    id_t32 id, project_id;
    int64_t cutoff;
} parent_t;

#define PARENTS_MAX 64

/* Inside one transaction: re-check each candidate (a message may have arrived since the
 * read) and remove it. recheck: $1 id, $2 cutoff; a row = still expired. */
static int64_t remove_parents(store_conn_t *c, const char *col, const char *recheck, parent_t *p,
                              int n, int limit, err_t *e)
{
    if (n == 0) return 0;
    if (store_begin(c, e) < 0) return -1;
    int64_t total = 0;
    for (int k = 0; k < n && total < limit; k++) {
        store_stmt_t *st = store_query(c, e, recheck, "si", p[k].id, p[k].cutoff);
        int still = st ? store_step(st, e) : -1;
        store_done(st);
        int whole = 0;
        int64_t r = still < 0    ? -1
                    : still == 0 ? 0
                                 : remove_parent(c, p[k].project_id, col, p[k].id,
                                                 limit - (int)total, &whole, e);
        if (r < 0) {
            store_rollback(c);
            return -1;
        }
        total += r + whole;
    }
    if (store_commit(c, e) < 0) return -1;
    return total;
}

/* CONVERSATION_EXPIRE_POLICY: a conversation whose newest message is older than the TTL
 * goes whole (messages first); one with a newer message stays whole. */
static int64_t step_conversations(store_conn_t *c, int64_t now, int limit, err_t *e)
{
    int napps = 0;
    app_policy_t *apps = load_apps(c, &napps, e);
    if (!apps) return -1;
    parent_t p[PARENTS_MAX];
    id_t32 ids[PARENTS_MAX];
    int n = 0;
    for (int i = 0; i < napps && n < PARENTS_MAX; i++) {
        if (strcmp(apps[i].type, "CONVERSATION_EXPIRE_POLICY") != 0) continue;
        int64_t cutoff = now - apps[i].ttl_days * PRIVACY_DAY_MS;
        int got = collect(store_query(c, e,
                                      "SELECT id FROM conversations cv WHERE app_id = $1 AND "
                                      "created_at < $2 AND NOT EXISTS (SELECT 1 FROM messages m "
                                      "WHERE m.conversation_id = cv.id AND m.accept_time >= $2) "
                                      "ORDER BY id LIMIT $3",
                                      "sid", apps[i].id, cutoff, PARENTS_MAX - n),
                          ids, PARENTS_MAX - n, e);
        if (got < 0) {
            free(apps);
            return -1;
        }
        for (int k = 0; k < got; k++, n++) {
            memcpy(p[n].id, ids[k], sizeof ids[k]);
            snprintf(p[n].project_id, sizeof p[n].project_id, "%s", apps[i].project_id);
            p[n].cutoff = cutoff;
        }
    }
    free(apps);
    return remove_parents(c, "conversation_id",
                          "SELECT 1 FROM conversations cv WHERE id = $1 AND NOT EXISTS (SELECT 1 "
                          "FROM messages m WHERE m.conversation_id = cv.id AND m.accept_time >= "
                          "$2)",
                          p, n, limit, e);
}

/* CONTACT_EXPIRE_POLICY (project settings): a contact whose last activity (its newest
 * message, or its last update) is older than the TTL goes with its conversations and
 * messages. */
#define CONTACT_EXPIRED                                                                            \
    "last_activity < $2 AND updated_at < $2 AND created_at < $2 AND NOT EXISTS (SELECT 1 FROM "    \
    "messages m WHERE m.contact_id = ct.id AND m.accept_time >= $2)"

static int64_t step_contacts(store_conn_t *c, int64_t now, int limit, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT project_id, contact_ttl_days FROM project_settings "
                                   "WHERE contact_retention = 'CONTACT_EXPIRE_POLICY' ORDER BY "
                                   "project_id",
                                   "");
    if (!st) return -1;
    int np = 0, cap = 16, rc;
    parent_t *pols = xcalloc((size_t)cap, sizeof *pols); /* project_id + cutoff */
    while ((rc = store_step(st, e)) == 1) {
        if (np == cap) pols = xrealloc(pols, (size_t)(cap *= 2) * sizeof *pols);
        snprintf(pols[np].project_id, sizeof pols[np].project_id, "%s", store_col_text(st, 0));
        pols[np++].cutoff = now - store_col_int(st, 1) * PRIVACY_DAY_MS;
    }
    store_done(st);
    parent_t p[PARENTS_MAX];
    id_t32 ids[PARENTS_MAX];
    int n = 0;
    for (int i = 0; rc == 0 && i < np && n < PARENTS_MAX; i++) {
        int got = collect(store_query(c, e,
                                      "SELECT id FROM contacts ct WHERE project_id = $1 AND "
                                      "" CONTACT_EXPIRED " ORDER BY id LIMIT $3",
                                      "sid", pols[i].project_id, pols[i].cutoff, PARENTS_MAX - n),
                          ids, PARENTS_MAX - n, e);
        if (got < 0) rc = -1;
        for (int k = 0; k < got; k++, n++) {
            memcpy(p[n].id, ids[k], sizeof ids[k]);
            memcpy(p[n].project_id, pols[i].project_id, sizeof p[n].project_id);
            p[n].cutoff = pols[i].cutoff;
        }
    }
    free(pols);
    if (rc < 0) return -1;
    return remove_parents(c, "contact_id",
                          "SELECT 1 FROM contacts ct WHERE id = $1 AND " CONTACT_EXPIRED, p, n,
                          limit, e);
}

typedef struct {
    int64_t now;
    int limit;
} batch_t;

static int64_t in_tx(store_conn_t *c, err_t *e, int64_t (*body)(store_conn_t *, void *, err_t *),
                     void *arg)
{
    if (store_begin(c, e) < 0) return -1;
    int64_t n = body(c, arg, e);
    if (n < 0 || store_commit(c, e) < 0) {
        store_rollback(c);
        return -1;
    }
    return n;
}

/* Purge one deleted project past its grace period, a batch at a time: its messages
 * (through privacy_delete_messages), then every table of the project scope, children
 * first, then the project row. */
static int64_t projects_body(store_conn_t *c, void *arg, err_t *e)
{
    batch_t *b = arg;
    id_t32 pid;
    int got = collect(store_query(c, e,
                                  "SELECT id FROM projects WHERE deleted_at IS NOT NULL AND "
                                  "deleted_at <= $1 ORDER BY deleted_at LIMIT 1",
                                  "i", b->now - grace_ms),
                      &pid, 1, e);
    if (got <= 0) return got;
    id_t32 *ids = xcalloc((size_t)b->limit, sizeof *ids);
    int n = collect(store_query(c, e, "SELECT id FROM messages WHERE project_id = $1 LIMIT $2",
                                "sd", pid, b->limit),
                    ids, b->limit, e);
    int64_t r = n < 0 ? -1 : privacy_delete_messages(c, pid, ids, n, 1, e);
    free(ids);
    if (r != 0) return r;
    if (store_exec(c, e,
                   "DELETE FROM inbound_seen WHERE app_id IN (SELECT id FROM apps WHERE "
                   "project_id = $1)",
                   "s", pid) < 0)
        return -1;
    privacy_scope_t sc;
    if (privacy_scope_build(c, &sc, e) < 0) return -1;
    int64_t total = 0;
    for (int k = sc.n - 1; k >= 1 && total == 0; k--) { /* children first; [0] = projects */
        const store_table_t *t = &sc.tables[sc.order[k]];
        buf_t q;
        buf_init(&q);
        if (t->npk == 0) {
            buf_printf(&q, "DELETE FROM %s WHERE %s", t->name, sc.pred[k]);
        } else {
            buf_t cols;
            buf_init(&cols);
            for (int j = 0; j < t->npk; j++)
                buf_printf(&cols, "%s%s", j ? ", " : "", t->pk[j]);
            buf_printf(&q, "DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s WHERE %s LIMIT %d)",
                       t->name, cols.data, cols.data, t->name, sc.pred[k], b->limit);
            buf_free(&cols);
        }
        total = store_exec(c, e, q.data, "s", pid);
        buf_free(&q);
    }
    privacy_scope_free(&sc);
    if (total != 0) return total;
    int64_t p = store_exec(c, e, "DELETE FROM projects WHERE id = $1", "s", pid);
    if (p > 0) log_kv(LOG_INFO, "deleted project purged", "project_id", pid);
    return p;
}

static int64_t step_projects(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    batch_t b = {now_ms, limit};
    return in_tx(c, e, projects_body, &b);
}

void privacy_register_builtin(void)
{
    privacy_sweep_register("projects", step_projects);
    privacy_sweep_register("contacts", step_contacts);
    privacy_sweep_register("conversations", step_conversations);
    privacy_sweep_register("messages", step_messages);
}
