/* contacts.c: HTTP handlers of the Conversation API's contacts: each takes the request
 * apart (path ids, query, body, update mask), calls convo/contacts.c and replies. */
#include "api/api.h"
#include "convo/contacts.h"

static const char *const update_paths[] = {
    "channel_identities", "channel_priority", "display_name", "email",
    "external_id",        "language",         "metadata",     NULL};

static void contact_create(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    json_t *body = api_body(req);
    if (!body) return;
    err_t e;
    api_reply_result(req, 200, convo_contact_create(&cx, body, &e), &e);
}

static void contact_get(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "contact_id");
    if (!id) return;
    err_t e;
    api_reply_result(req, 200, convo_contact_get(&cx, id, &e), &e);
}

static void contact_list(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    err_t e;
    json_t *r = convo_contact_list(&cx, http_query(req, "page_size"), http_query(req, "page_token"),
                                   http_query(req, "external_id"), http_query(req, "channel"),
                                   http_query(req, "identity"), &e);
    api_reply_result(req, 200, r, &e);
}

static void contact_update(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "contact_id");
    if (!id) return;
    convo_mask_t mask;
    if (api_mask(req, update_paths, &mask) < 0) return;
    json_t *body = api_body(req);
    if (!body) return;
    err_t e;
    api_reply_result(req, 200, convo_contact_update(&cx, id, body, &mask, &e), &e);
}

static void contact_delete(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "contact_id");
    if (!id) return;
    err_t e;
    api_reply_result(req, 200, convo_contact_delete(&cx, id, &e) < 0 ? NULL : json_object(), &e);
}

static void contact_merge(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = api_id(req, "destination_id");
    if (!id) return;
    json_t *body = api_body(req);
    if (!body) return;
    err_t e;
    api_reply_result(req, 200, convo_contact_merge(&cx, id, body, &e), &e);
}

static void contact_identity_conflicts(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    err_t e;
    json_t *r = convo_contact_identity_conflicts(&cx, http_query(req, "page_size"),
                                                 http_query(req, "page_token"), &e);
    api_reply_result(req, 200, r, &e);
}

const http_route_t api_contacts_routes[] = {
    {"POST", "/v1/projects/{project_id}/contacts", contact_create, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/contacts", contact_list, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/contacts:identityConflicts", contact_identity_conflicts,
     HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/contacts/{contact_id}", contact_get, HTTP_AUTH | HTTP_JSON},
    {"PATCH", "/v1/projects/{project_id}/contacts/{contact_id}", contact_update,
     HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}/contacts/{contact_id}", contact_delete,
     HTTP_AUTH | HTTP_JSON},
    {"POST", "/v1/projects/{project_id}/contacts/{destination_id}:merge", contact_merge,
     HTTP_AUTH | HTTP_JSON},
};
const size_t api_contacts_nroutes = sizeof api_contacts_routes / sizeof api_contacts_routes[0];
