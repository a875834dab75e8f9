/* conversations.c: HTTP handlers of the Conversation API's conversations: query and path
 * parameters in, convo_conversation_* calls, the result or the error out. */
#include "api/api.h"
#include "convo/conversations.h"

static void conversation_create(http_req_t *req)
{
    convo_ctx_t cx;
    json_t *body;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(body = api_body(req))) return;
    api_reply_result(req, 200, convo_conversation_create(&cx, body, &e), &e);
}

static void conversation_list(http_req_t *req)
{
    convo_ctx_t cx;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0) return;
    convo_conversation_query_t q = {
        .app_id = http_query(req, "app_id"),
        .contact_id = http_query(req, "contact_id"),
        .only_active = http_query(req, "only_active"),
        .active_channel = http_query(req, "active_channel"),
        .page_size = http_query(req, "page_size"),
        .page_token = http_query(req, "page_token"),
    };
    api_reply_result(req, 200, convo_conversation_list(&cx, &q, &e), &e);
}

static void conversation_recent(http_req_t *req)
{
    convo_ctx_t cx;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0) return;
    convo_conversation_recent_query_t q = {
        .app_id = http_query(req, "app_id"),
        .only_active = http_query(req, "only_active"),
        .page_size = http_query(req, "page_size"),
        .page_token = http_query(req, "page_token"),
        .order = http_query(req, "order"),
    };
    api_reply_result(req, 200, convo_conversation_recent(&cx, &q, &e), &e);
}

static void conversation_get(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "conversation_id"))) return;
    api_reply_result(req, 200, convo_conversation_get(&cx, id, &e), &e);
}

static void conversation_update(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    json_t *body;
    convo_mask_t mask;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "conversation_id")) ||
        !(body = api_body(req)) || api_mask(req, convo_conversation_mask_paths, &mask) < 0)
        return;
    api_reply_result(req, 200,
                     convo_conversation_update(&cx, id, body, &mask,
                                               http_query(req, "metadata_update_strategy"), &e),
                     &e);
}

static void conversation_delete(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "conversation_id"))) return;
    api_reply_result(req, 200, convo_conversation_delete(&cx, id, &e), &e);
}

static void conversation_stop(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "conversation_id"))) return;
    api_reply_result(req, 200, convo_conversation_stop(&cx, id, &e), &e);
}

static void conversation_inject_message(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    json_t *body;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "conversation_id")) ||
        !(body = api_body(req)))
        return;
    api_reply_result(req, 200, convo_conversation_inject_message(&cx, id, body, &e), &e);
}

#define CONV "/v1/projects/{project_id}/conversations"
const http_route_t api_conversations_routes[] = {
    {"POST", CONV, conversation_create, HTTP_AUTH | HTTP_JSON},
    {"GET", CONV, conversation_list, HTTP_AUTH | HTTP_JSON},
    {"GET", CONV ":recent", conversation_recent, HTTP_AUTH | HTTP_JSON},
    {"GET", CONV "/{conversation_id}", conversation_get, HTTP_AUTH | HTTP_JSON},
    {"PATCH", CONV "/{conversation_id}", conversation_update, HTTP_AUTH | HTTP_JSON},
    {"DELETE", CONV "/{conversation_id}", conversation_delete, HTTP_AUTH | HTTP_JSON},
    {"POST", CONV "/{conversation_id}:stop", conversation_stop, HTTP_AUTH | HTTP_JSON},
    {"POST", CONV "/{conversation_id}:inject-message", conversation_inject_message,
     HTTP_AUTH | HTTP_JSON},
};
#undef CONV
const size_t api_conversations_nroutes =
    sizeof api_conversations_routes / sizeof api_conversations_routes[0];
