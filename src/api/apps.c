/* apps.c: HTTP handlers of the Conversation API's apps (/v1/projects/{project_id}/apps):
 * each one translates the request into a convo_app_* call (convo/apps.h) and its result
 * into the reply. */
#include "api/api.h"
#include "convo/apps.h"

static void apps_create(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    json_t *body = api_body(req);
    if (!body) return;
    err_t e;
    json_t *app = convo_app_create(&cx, body, &e);
    api_reply_result(req, 200, app, &e);
}

static void apps_list(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    err_t e;
    json_t *apps = convo_app_list(&cx, &e);
    api_reply_result(req, 200, apps, &e);
}

static void apps_get(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "app_id");
    if (!id) return;
    err_t e;
    json_t *app = convo_app_get(&cx, id, &e);
    api_reply_result(req, 200, app, &e);
}

static void apps_update(http_req_t *req)
{
    convo_ctx_t cx;
    convo_mask_t mask;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "app_id");
    if (!id) return;
    if (api_mask(req, convo_app_mask_paths, &mask) < 0) return;
    json_t *body = api_body(req);
    if (!body) return;
    err_t e;
    json_t *app = convo_app_update(&cx, id, body, &mask, &e);
    api_reply_result(req, 200, app, &e);
}

static void apps_delete(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "app_id");
    if (!id) return;
    err_t e;
    api_reply_result(req, 200, convo_app_delete(&cx, id, &e) < 0 ? NULL : json_object(), &e);
}

const http_route_t api_apps_routes[] = {
    {"POST", "/v1/projects/{project_id}/apps", apps_create, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/apps", apps_list, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/apps/{app_id}", apps_get, HTTP_AUTH | HTTP_JSON},
    {"PATCH", "/v1/projects/{project_id}/apps/{app_id}", apps_update, HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}/apps/{app_id}", apps_delete, HTTP_AUTH | HTTP_JSON},
};
const size_t api_apps_nroutes = sizeof api_apps_routes / sizeof api_apps_routes[0];
