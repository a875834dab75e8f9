/* deploy.c: storing flow sets (flows_revisions, flows_deployed) and handing them to the
 * runtime. A deploy validates the whole document first (nothing changes when it has a
 * problem), then in one transaction checks the expected revision, stores the exact text
 * and moves the live pointer; after the commit the runtime swaps the project's set.
 * Deploys are serialized in-process so the runtime sees them in commit order. */
#include "flows/internal.h"

#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/ulid.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOWS_REVISIONS_KEPT 100

static pthread_mutex_t deploy_mu = PTHREAD_MUTEX_INITIALIZER;

static int current_rev(store_conn_t *c, const char *project_id, char out[32], err_t *e)
{
    out[0] = 0;
    store_stmt_t *st =
        store_query(c, e, "SELECT rev FROM flows_deployed WHERE project_id = $1", "s", project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) snprintf(out, 32, "%s", store_col_text(st, 0));
    store_done(st);
    return rc < 0 ? -1 : 0;
}

int flows_deploy(store_conn_t *c, const char *project_id, const char *flows_text,
                 const char *rev_expected, const char *actor, const char *note, char rev_out[32],
                 json_t **problems, err_t *e)
{
    *problems = NULL;
    json_t *doc = jsonx_parse(flows_text, strlen(flows_text), e);
    if (!doc) {
        *problems =
            json_pack("[{s:s,s:s,s:s}]", "node_id", "", "field", "flows", "message", e->message);
        return -1;
    }
    if ((*problems = flows_validate(doc, e))) {
        json_decref(doc);
        return -1;
    }
    char cur[32];
    char rev[ULID_LEN + 1];
    if (store_begin(c, e) < 0) {
        json_decref(doc);
        return -1;
    }
    /* after BEGIN (which holds the store's write lock): no lock-order inversion, even when
       the caller's own transaction is the outer one */
    pthread_mutex_lock(&deploy_mu);
    if (current_rev(c, project_id, cur, e) < 0) goto rollback;
    if (rev_expected && *rev_expected && strcmp(rev_expected, cur) != 0) {
        err_set(e, ERR_ABORTED,
                "flows were changed since revision %s (the live revision is %s); reload and "
                "deploy again",
                rev_expected, *cur ? cur : "none");
        goto rollback;
    }
    ulid_new(rev);
    int64_t now = clock_now_ms();
    if (store_exec(c, e,
                   "INSERT INTO flows_revisions (project_id, rev, flows, actor, note, created_at)"
                   " VALUES ($1, $2, $3, $4, $5, $6)",
                   "sssssi", project_id, rev, flows_text, actor ? actor : "", note ? note : "",
                   now) < 0)
        goto rollback;
    if (store_exec(c, e,
                   "INSERT INTO flows_deployed (project_id, rev, updated_at) VALUES ($1, $2, $3)"
                   " ON CONFLICT (project_id) DO UPDATE SET rev = excluded.rev,"
                   " updated_at = excluded.updated_at",
                   "ssi", project_id, rev, now) < 0)
        goto rollback;
    if (store_exec(c, e,
                   "DELETE FROM flows_revisions WHERE project_id = $1 AND rev NOT IN (SELECT rev "
                   "FROM flows_revisions WHERE project_id = $1 ORDER BY rev DESC LIMIT $2)",
                   "si", project_id, (int64_t)FLOWS_REVISIONS_KEPT) < 0)
        goto rollback;
    if (store_commit(c, e) < 0) goto rollback;
    snprintf(rev_out, 32, "%s", rev);
    flows_runtime_deploy(project_id, rev, doc);
    pthread_mutex_unlock(&deploy_mu);
    return 0;
rollback:
    store_rollback(c);
    pthread_mutex_unlock(&deploy_mu);
    json_decref(doc);
    return -1;
}

int flows_export(store_conn_t *c, const char *project_id, char **text, char rev_out[32], err_t *e)
{
    *text = NULL;
    rev_out[0] = 0;
    store_stmt_t *st = store_query(c, e,
                                   "SELECT r.rev, r.flows FROM flows_deployed d JOIN "
                                   "flows_revisions r ON r.project_id = d.project_id AND r.rev = "
                                   "d.rev WHERE d.project_id = $1",
                                   "s", project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        snprintf(rev_out, 32, "%s", store_col_text(st, 0));
        *text = xstrdup(store_col_text(st, 1));
    }
    store_done(st);
    if (rc < 0) return -1;
    if (!*text) *text = xstrdup("[]");
    return 0;
}

json_t *flows_revisions(store_conn_t *c, const char *project_id, int limit, err_t *e)
{
    char cur[32];
    if (current_rev(c, project_id, cur, e) < 0) return NULL;
    store_stmt_t *st = store_query(c, e,
                                   "SELECT rev, actor, note, created_at, flows FROM "
                                   "flows_revisions WHERE project_id = $1 ORDER BY rev DESC "
                                   "LIMIT $2",
                                   "si", project_id, (int64_t)limit);
    if (!st) return NULL;
    json_t *out = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        char ts[32];
        clock_format_rfc3339(store_col_int(st, 3), ts, sizeof ts);
        json_t *doc = json_loads(store_col_text(st, 4), 0, NULL);
        json_array_append_new(out,
                              json_pack("{s:s,s:s,s:s,s:s,s:i,s:b}", "rev", store_col_text(st, 0),
                                        "created_at", ts, "actor", store_col_text(st, 1), "note",
                                        store_col_text(st, 2), "nodes", (int)json_array_size(doc),
                                        "live", strcmp(cur, store_col_text(st, 0)) == 0));
        json_decref(doc);
    }
    store_done(st);
    if (rc < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

char *flows_revision_text(store_conn_t *c, const char *project_id, const char *rev, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e, "SELECT flows FROM flows_revisions WHERE project_id = $1 AND rev = $2",
                    "ss", project_id, rev);
    if (!st) return NULL;
    char *out = NULL;
    int rc = store_step(st, e);
    if (rc == 1) out = xstrdup(store_col_text(st, 0));
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "flows revision %s not found", rev);
    return out;
}

int flows_deploy_sync(store_conn_t *c, err_t *e)
{
    if (!flows_store()) return 0;
    pthread_mutex_lock(&deploy_mu);
    store_stmt_t *st = store_query(
        c, e,
        "SELECT d.project_id, d.rev, r.flows FROM flows_deployed d JOIN flows_revisions r"
        " ON r.project_id = d.project_id AND r.rev = d.rev",
        "");
    if (!st) {
        pthread_mutex_unlock(&deploy_mu);
        return -1;
    }
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        const char *project = store_col_text(st, 0), *rev = store_col_text(st, 1);
        char cur[32];
        flows_runtime_rev(project, cur);
        if (strcmp(cur, rev) == 0) continue;
        const char *text = store_col_text(st, 2);
        json_t *doc = json_loads(text, JSON_DECODE_ANY, NULL);
        err_t ve;
        json_t *problems = doc ? flows_validate(doc, &ve) : NULL;
        if (!doc || problems) { /* e.g. a node type this binary no longer has */
            log_kv(LOG_WARN, "flows: deployed set cannot run; not started", "project", project,
                   "rev", rev, "error", doc ? ve.message : "invalid JSON");
            json_decref(problems);
            json_decref(doc);
            flows_runtime_deploy(project, rev, NULL);
            continue;
        }
        flows_runtime_deploy(project, rev, doc);
    }
    store_done(st);
    pthread_mutex_unlock(&deploy_mu);
    return rc < 0 ? -1 : 0;
}
