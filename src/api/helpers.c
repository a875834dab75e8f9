/* helpers.c: the small steps every Conversation API handler takes (context, body, ids,
 * update masks, replies), so handlers stay a few lines each. */
#include "api/api.h"
#include "base/nudge.h"

#include <string.h>

int api_convo_ctx(http_req_t *req, convo_ctx_t *cx)
{
    api_ctx_t *ctx = http_ctx(req);
    cx->conn = api_conn(req);
    cx->project_id = http_principal_project(req);
    cx->seal_key = ctx->seal_key;
    cx->actor = NULL;
    const char *key = http_principal_key(req);
    if (key && *key) {
        char *actor = arena_alloc(http_arena(req), strlen(key) + 5);
        memcpy(actor, "key:", 4);
        strcpy(actor + 4, key);
        cx->actor = actor;
    }
    if (!cx->conn) return -1;
    if (!cx->project_id) {
        http_reply_error(req, ERR_UNAUTHENTICATED, "no authenticated project");
        return -1;
    }
    return 0;
}

json_t *api_body(http_req_t *req)
{
    json_t *b = http_json(req);
    if (!b) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "request body is empty; expected a JSON object");
        return NULL;
    }
    if (!json_is_object(b)) {
        http_reply_error(req, ERR_INVALID_ARGUMENT, "request body must be a JSON object");
        return NULL;
    }
    return b;
}

const char *api_id(http_req_t *req, const char *name)
{
    const char *v = http_param(req, name);
    char *canon = arena_alloc(http_arena(req), ULID_LEN + 1);
    err_t e;
    if (convo_norm_id(v, name, canon, &e) < 0) {
        http_reply_err(req, &e);
        return NULL;
    }
    return canon;
}

int api_mask(http_req_t *req, const char *const allowed[], convo_mask_t *m)
{
    const char *vals[CONVO_MASK_MAX];
    char *copies[CONVO_MASK_MAX];
    int n = http_query_all(req, "update_mask", vals, CONVO_MASK_MAX);
    n += http_query_all(req, "update_mask.paths", vals + n, CONVO_MASK_MAX - n);
    for (int i = 0; i < n; i++)
        copies[i] = arena_strdup(http_arena(req), vals[i]);
    err_t e;
    if (convo_mask_parse(copies, n, allowed, m, &e) < 0) {
        http_reply_err(req, &e);
        return -1;
    }
    return 0;
}

void api_reply_result(http_req_t *req, int status, json_t *result, const err_t *e)
{
    nudge_flush(); /* the domain call committed work for a background worker, if it marked any */
    if (result)
        http_reply_json(req, status, result);
    else
        http_reply_err(req, e);
}
