/* messages.c: HTTP handlers of the Conversation API's messages (list, get, update,
 * delete). messages:send and messages:transcode live elsewhere. */
#include "api/api.h"
#include "convo/messages.h"

static void message_list(http_req_t *req)
{
    convo_ctx_t cx;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0) return;
    convo_message_query_t q = {
        .conversation_id = http_query(req, "conversation_id"),
        .contact_id = http_query(req, "contact_id"),
        .app_id = http_query(req, "app_id"),
        .channel_identity = http_query(req, "channel_identity"),
        .channel = http_query(req, "channel"),
        .direction = http_query(req, "direction"),
        .start_time = http_query(req, "start_time"),
        .end_time = http_query(req, "end_time"),
        .page_size = http_query(req, "page_size"),
        .page_token = http_query(req, "page_token"),
        .view = http_query(req, "view"),
        .messages_source = http_query(req, "messages_source"),
        .only_recipient_originated = http_query(req, "only_recipient_originated"),
    };
    api_reply_result(req, 200, convo_message_list(&cx, &q, &e), &e);
}

static void message_get(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "message_id"))) return;
    api_reply_result(req, 200, convo_message_read(&cx, id, http_query(req, "messages_source"), &e),
                     &e);
}

static void message_update(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    json_t *body;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "message_id")) || !(body = api_body(req)))
        return;
    api_reply_result(
        req, 200, convo_message_update(&cx, id, http_query(req, "messages_source"), body, &e), &e);
}

static void message_delete(http_req_t *req)
{
    convo_ctx_t cx;
    const char *id;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(id = api_id(req, "message_id"))) return;
    api_reply_result(req, 200,
                     convo_message_delete(&cx, id, http_query(req, "messages_source"), &e), &e);
}

#define MSG "/v1/projects/{project_id}/messages"
const http_route_t api_messages_routes[] = {
    {"GET", MSG, message_list, HTTP_AUTH | HTTP_JSON},
    {"GET", MSG "/{message_id}", message_get, HTTP_AUTH | HTTP_JSON},
    {"PATCH", MSG "/{message_id}", message_update, HTTP_AUTH | HTTP_JSON},
    {"DELETE", MSG "/{message_id}", message_delete, HTTP_AUTH | HTTP_JSON},
};
#undef MSG
const size_t api_messages_nroutes = sizeof api_messages_routes / sizeof api_messages_routes[0];
