/* contact_routing.h: what the contact center's routing handlers (contact_routing.c: the
 * configurator; contact_workspace.c: queue, conversations, dashboard, events) share. */
#ifndef PARLEY_API_CONTACT_ROUTING_H
#define PARLEY_API_CONTACT_ROUTING_H

#include "api/api.h"
#include "api/contact_auth.h"
#include "contact/routing.h"
#include "http/http.h"

/* Authenticate with a role mask and fill cx (strings live in the request's arena).
 * -1 after replying. */
int api_contact_routing_ctx(http_req_t *req, unsigned allowed, contact_ctx_t *cx);
/* Path parameter `name` as a canonical ULID, or NULL after replying 400. */
const char *api_contact_id(http_req_t *req, const char *name);
/* Reply with a domain result (status 200) or the error. */
void api_contact_reply(http_req_t *req, json_t *result, const err_t *e);

/* The handlers' shape: ctx for a role mask, optional id params, optional body, one domain
 * call. Each macro returns from the handler after replying when its step fails. */
#define R_ADMIN CONTACT_ROLE_ADMIN
#define R_SUP   CONTACT_ROLE_SUPERVISOR
#define R_AGENT CONTACT_ROLE_AGENT
#define R_WORK  (R_ADMIN | R_SUP | R_AGENT)
#define CTX(mask)                                                                                  \
    contact_ctx_t cx;                                                                              \
    err_t e;                                                                                       \
    if (api_contact_routing_ctx(req, (mask), &cx) < 0) return
#define ID(var, name)                                                                              \
    const char *var = api_contact_id(req, name);                                                   \
    if (!var) return
#define BODY(var)                                                                                  \
    json_t *var = api_body(req);                                                                   \
    if (!var) return

#endif
