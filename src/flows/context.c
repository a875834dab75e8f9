/* context.c: node, flow and global context, persisted in flows_context (one row per
 * top-level key, value as JSON text) so they survive restart and redeploy. Nested keys
 * ("a.b[0]") read and rewrite the top-level value, as Node-RED's get/set. Node context is
 * owned by the node id, flow context by the tab id (or subflow instance id; "$parent."
 * reaches the enclosing flow), global by the project. Runs on the executor thread with
 * its own store connection; every set is its own small transaction. */
#include "flows/internal.h"

#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "flows/props.h"

#include <stdlib.h>
#include <string.h>

void flows_context_init(void) {}

static const char *strip_store(const char *key)
{
    if (key[0] == '#' && key[1] == ':' && key[2] == '(') {
        const char *end = strstr(key, ")::");
        if (end) return end + 3;
    }
    return key;
}

/* Resolve scope owner and strip "$parent." prefixes. NULL for a bad scope. */
static const char *owner_of(flows_node_t *n, const char *scope, const char **key)
{
    if (strcmp(scope, "node") == 0) return n->id;
    if (strcmp(scope, "global") == 0) return "";
    if (strcmp(scope, "flow") != 0) return NULL;
    flows_flow_t *f = n->flow;
    while (strncmp(*key, "$parent.", 8) == 0) {
        *key += 8;
        if (f) f = f->parent;
    }
    return f ? f->id : "";
}

static json_t *load_top(store_conn_t *c, const char *project, const char *scope, const char *owner,
                        const char *top, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT value FROM flows_context WHERE project_id = $1 AND "
                                   "scope = $2 AND owner = $3 AND key = $4",
                                   "ssss", project, scope, owner, top);
    if (!st) return NULL;
    json_t *v = NULL;
    if (store_step(st, e) == 1) v = json_loads(store_col_text(st, 0), JSON_DECODE_ANY, NULL);
    store_done(st);
    return v;
}

json_t *flows_context_get(flows_node_t *n, const char *scope, const char *key)
{
    if (!key || !*key) return NULL;
    key = strip_store(key);
    const char *owner = owner_of(n, scope, &key);
    if (!owner) return NULL;
    flows_path_t p;
    if (flows_path_parse(key, &p, NULL) < 0) return NULL;
    err_t e;
    store_conn_t *c = flows_conn(&e);
    json_t *out = NULL;
    if (c && !p.seg[0].is_index) {
        json_t *top = load_top(c, n->set->project_id, scope, owner, p.seg[0].key, &e);
        if (top && p.n == 1)
            out = top;
        else if (top) {
            json_t *wrap = json_object();
            json_object_set_new(wrap, p.seg[0].key, top);
            json_t *v = flows_prop_get(wrap, key);
            out = v ? json_incref(v) : NULL;
            json_decref(wrap);
        }
    }
    flows_path_free(&p);
    return out;
}

int flows_context_set(flows_node_t *n, const char *scope, const char *key, const json_t *v)
{
    if (!key || !*key) return -1;
    key = strip_store(key);
    const char *owner = owner_of(n, scope, &key);
    if (!owner) return -1;
    flows_path_t p;
    err_t e;
    if (flows_path_parse(key, &p, &e) < 0 || p.seg[0].is_index) {
        if (p.n) flows_path_free(&p);
        return -1;
    }
    store_conn_t *c = flows_conn(&e);
    int rc = -1;
    if (!c) goto out;
    const char *proj = n->set->project_id, *top = p.seg[0].key;
    if (store_begin(c, &e) < 0) goto out;
    json_t *newtop = NULL;
    if (p.n == 1)
        newtop = v ? json_deep_copy(v) : NULL;
    else {
        json_t *wrap = json_object();
        json_t *cur = load_top(c, proj, scope, owner, top, &e);
        if (cur) json_object_set_new(wrap, top, cur);
        if (v)
            flows_prop_set(wrap, key, json_deep_copy(v), &e);
        else
            flows_prop_delete(wrap, key);
        newtop = json_incref(json_object_get(wrap, top));
        json_decref(wrap);
    }
    int64_t r;
    if (newtop) {
        char *text = json_dumps(newtop, JSON_COMPACT | JSON_ENCODE_ANY);
        r = store_exec(
            c, &e,
            "INSERT INTO flows_context (project_id, scope, owner, key, value, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, scope, owner, key)"
            " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            "sssssi", proj, scope, owner, top, text, clock_now_ms());
        free(text);
        json_decref(newtop);
    } else
        r = store_exec(c, &e,
                       "DELETE FROM flows_context WHERE project_id = $1 AND scope = $2 AND "
                       "owner = $3 AND key = $4",
                       "ssss", proj, scope, owner, top);
    if (r < 0 || store_commit(c, &e) < 0) {
        store_rollback(c);
        log_kv(LOG_WARN, "flows context write failed", "project", proj, "error", e.message);
        goto out;
    }
    rc = 0;
out:
    flows_path_free(&p);
    return rc;
}

json_t *flows_context_keys(flows_node_t *n, const char *scope)
{
    json_t *out = json_array();
    const char *k = "";
    const char *owner = owner_of(n, scope, &k);
    err_t e;
    store_conn_t *c = owner ? flows_conn(&e) : NULL;
    if (!c) return out;
    store_stmt_t *st = store_query(c, &e,
                                   "SELECT key FROM flows_context WHERE project_id = $1 AND "
                                   "scope = $2 AND owner = $3 ORDER BY key",
                                   "sss", n->set->project_id, scope, owner);
    while (st && store_step(st, &e) == 1)
        json_array_append_new(out, json_string(store_col_text(st, 0)));
    store_done(st);
    return out;
}
