/* webhooks.c: HTTP handlers of the Conversation API's webhooks: create, get, update,
 * delete, and the per-app list. The rules live in convo/webhooks.c. */
#include "api/api.h"
#include "convo/webhooks.h"

static void webhooks_create(http_req_t *req)
{
    convo_ctx_t cx;
    json_t *body;
    if (api_convo_ctx(req, &cx) < 0 || !(body = api_body(req))) return;
    err_t e;
    api_reply_result(req, 200, convo_webhooks_create(&cx, body, &e), &e);
}

static void webhooks_get(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "webhook_id"))) return;
    err_t e;
    api_reply_result(req, 200, convo_webhooks_get(&cx, id, &e), &e);
}

static void webhooks_update(http_req_t *req)
{
    convo_ctx_t cx;
    convo_mask_t mask;
    const char *id;
    json_t *body;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "webhook_id")) ||
        api_mask(req, convo_webhooks_mask_paths, &mask) < 0 || !(body = api_body(req)))
        return;
    err_t e;
    api_reply_result(req, 200, convo_webhooks_update(&cx, id, body, &mask, &e), &e);
}

static void webhooks_delete(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "webhook_id"))) return;
    err_t e;
    api_reply_result(req, 200, convo_webhooks_delete(&cx, id, &e), &e);
}

static void webhooks_list(http_req_t *req)
{
    convo_ctx_t cx;
    const char *app_id;
    if (api_convo_ctx(req, &cx) < 0 || !(app_id = api_id(req, "app_id"))) return;
    err_t e;
    api_reply_result(req, 200, convo_webhooks_list(&cx, app_id, &e), &e);
}

const http_route_t api_webhooks_routes[] = {
    {"POST", "/v1/projects/{project_id}/webhooks", webhooks_create, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/webhooks/{webhook_id}", webhooks_get, HTTP_AUTH | HTTP_JSON},
    {"PATCH", "/v1/projects/{project_id}/webhooks/{webhook_id}", webhooks_update,
     HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}/webhooks/{webhook_id}", webhooks_delete,
     HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/apps/{app_id}/webhooks", webhooks_list,
     HTTP_AUTH | HTTP_JSON},
};
const size_t api_webhooks_nroutes = sizeof api_webhooks_routes / sizeof api_webhooks_routes[0];
