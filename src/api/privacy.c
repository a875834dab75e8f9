/* privacy.c: HTTP handlers of the data lifecycle (Parley extensions): project settings
 * (/v1/projects/{project_id}/settings: contact retention) and deleting a project with
 * its own key (DELETE /v1/projects/{project_id}: inaccessible at once, purged after the
 * grace period). Rules live in privacy/. */
#include "api/api.h"
#include "base/clock.h"
#include "privacy/privacy.h"

static void settings_get(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    err_t e;
    api_reply_result(req, 200, privacy_settings_get(cx.conn, cx.project_id, &e), &e);
}

static void settings_patch(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    json_t *body = api_body(req);
    if (!body) return;
    err_t e;
    api_reply_result(req, 200, privacy_settings_patch(cx.conn, cx.project_id, body, &e), &e);
}

static void project_delete(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    err_t e;
    int64_t now = clock_now_ms();
    json_t *r = NULL;
    if (privacy_project_delete(cx.conn, cx.project_id, now, &e) == 0)
        r = json_pack("{s:s, s:o, s:o}", "project_id", cx.project_id, "delete_time",
                      convo_time_json(now), "purge_time",
                      convo_time_json(now + privacy_grace_days_ms()));
    api_reply_result(req, 200, r, &e);
}

const http_route_t api_privacy_routes[] = {
    {"GET", "/v1/projects/{project_id}/settings", settings_get, HTTP_AUTH | HTTP_JSON},
    {"PATCH", "/v1/projects/{project_id}/settings", settings_patch, HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}", project_delete, HTTP_AUTH | HTTP_JSON},
};
const size_t api_privacy_nroutes = sizeof api_privacy_routes / sizeof api_privacy_routes[0];
