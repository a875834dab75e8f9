/* api.h: the HTTP handlers layer: the route table of every Parley endpoint, the context
 * handlers share, and the authentication hook. Handlers translate HTTP to domain calls
 * (tenant, convo, ...) and domain results back to HTTP; they hold no business rules. */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include "base/config.h"
#include "base/ratelimit.h"
#include "convo/convo.h"
#include "http/http.h"
#include "store/group.h"
#include "store/store.h"

#include <stdint.h>

typedef struct {
    const config_t *cfg;
    store_t *store;
    uint8_t master_key[32]; /* DATA_DIR/secret.key */
    uint8_t token_key[32];  /* derived: signs OAuth2 access tokens */
    uint8_t seal_key[32];   /* derived: seals stored secrets (credentials, webhook secrets) */
    ratelimit_t *ratelimit; /* NULL when http.rate_limit = 0 */
    store_group_t
        *writer; /* group commit for messages:send; NULL: commit on the request's thread */
    int64_t started_ms;
} api_ctx_t;

/* Fill derived keys and the rate limiter from cfg; api_ctx_cleanup frees them. */
void api_ctx_setup(api_ctx_t *ctx);
void api_ctx_cleanup(api_ctx_t *ctx);

const http_route_t *api_routes(size_t *n);
/* The HTTP_AUTH hook: Basic key_id:key_secret or Bearer token; project scoping; rate limit. */
int api_authenticate(http_req_t *req);
/* The server's finish hook (ctx: the api_ctx_t): ends what api_authenticate pinned for the
 * request on this thread's store connection (store_config_pin). */
void api_finish(void *ctx);

/* This thread's store connection, or NULL after replying 503. */
store_conn_t *api_conn(http_req_t *req);

/* Issue and check OAuth2 access tokens (exposed for unit tests). */
int api_token_issue(const uint8_t key[32], const char *key_id, const char *project_id,
                    int64_t expires_ms, char *out, size_t cap);
int api_token_check(const uint8_t key[32], const char *token, int64_t now_ms, char key_id[27],
                    char project_id[27], err_t *e);

/* ---- helpers for resource handlers (helpers.c) ----
 * Each returns -1 / NULL after replying with the precise error, so a handler can write
 * `if (api_convo_ctx(req, &cx) < 0) return;`. */

/* Connection + project (from the authenticated path) + keys for a /v1 request. */
int api_convo_ctx(http_req_t *req, convo_ctx_t *cx);
/* The JSON body, which must be an object. */
json_t *api_body(http_req_t *req);
/* Path parameter `name` that must be a ULID (400 INVALID_ARGUMENT naming it otherwise),
 * in canonical upper case. */
const char *api_id(http_req_t *req, const char *name);
/* update_mask from the query (`update_mask=a,b` or repeated `update_mask.paths=a`). */
int api_mask(http_req_t *req, const char *const allowed[], convo_mask_t *m);
/* Reply with a domain result: result (stolen) with status, or the error when NULL. */
void api_reply_result(http_req_t *req, int status, json_t *result, const err_t *e);

/* Route groups: each resource file defines its table; routes.c joins them. */
#define API_ROUTES(group)                                                                          \
    extern const http_route_t api_##group##_routes[];                                              \
    extern const size_t api_##group##_nroutes

API_ROUTES(apps);
API_ROUTES(contacts);
API_ROUTES(conversations);
API_ROUTES(messages);
API_ROUTES(webhooks);
API_ROUTES(inbound);
API_ROUTES(privacy);
API_ROUTES(flows);             /* core: flows admin API and debug stream (flows.c) */
API_ROUTES(flows_http);        /* io: public /flows/{project_id}/... (flows_http.c) */
API_ROUTES(contact_people);    /* contact: login, users, invitations (people) */
API_ROUTES(contact_gdpr);      /* contact: audit, GDPR, CSV (people) */
API_ROUTES(contact_routing);   /* contact: configurator (routing) */
API_ROUTES(contact_workspace); /* contact: queue, workspace, events (routing) */

/* Handlers, one group per file. */
void api_healthz(http_req_t *req);
void api_metrics(http_req_t *req);
void api_oauth2_token(http_req_t *req);

#endif
