/* contact_routing.h: what the contact center's routing handlers (contact_routing.c: the
 * configurator; contact_workspace.c: queue, conversations, dashboard, events) share. */
#ifndef PARLEY_API_CONTACT_ROUTING_H
#define PARLEY_API_CONTACT_ROUTING_H

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

#endif
