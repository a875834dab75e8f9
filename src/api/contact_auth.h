/* contact_auth.h: who is calling the contact center's API, and with which role.
 *
 * Two kinds of caller reach /v1/projects/{project_id}/contact/...:
 *   - a logged-in user: the `parley_session` cookie set by POST /auth/login (a random token
 *     stored only as a hash), plus the `X-CSRF-Token` header on every state-changing
 *     request (POST/PUT/PATCH/DELETE); the user's role comes from the users table;
 *   - a project access key (HTTP Basic or Bearer, exactly as the Conversation API): it acts
 *     with admin rights and passes every role mask.
 * Contact routes are declared WITHOUT HTTP_AUTH; each handler calls api_contact_auth first.
 * The path parameter holding the project must be named `project_id`. */
#ifndef PARLEY_API_CONTACT_AUTH_H
#define PARLEY_API_CONTACT_AUTH_H

#include "http/http.h"

enum {
    CONTACT_ROLE_ADMIN = 1,
    CONTACT_ROLE_SUPERVISOR = 2,
    CONTACT_ROLE_AGENT = 4,
    CONTACT_ROLE_DPO = 8,
};
#define CONTACT_ROLE_ANY                                                                           \
    (CONTACT_ROLE_ADMIN | CONTACT_ROLE_SUPERVISOR | CONTACT_ROLE_AGENT | CONTACT_ROLE_DPO)

typedef struct {
    char project_id[27];
    char user_id[27]; /* "" when a project access key acts (admin rights) */
    unsigned role;    /* one CONTACT_ROLE_* (CONTACT_ROLE_ADMIN for a key) */
    int is_key;       /* 1 when an access key acts */
    char actor[40];   /* "user:ID" or "key:ID", for audit and the event stream */
} contact_principal_t;

/* Authenticate a /v1/projects/{project_id}/contact/... request: a session cookie (plus the
 * X-CSRF-Token header on POST/PUT/PATCH/DELETE) or the project's access key (Basic or
 * Bearer, as the Conversation API; admin rights). The project in the path must be the
 * principal's. `allowed` is a mask of roles (a key passes every mask). On success fills
 * *out, sets the request's principal (so api_convo_ctx works; for a user the key is "")
 * and returns 0. Otherwise replies 401 (no/forged/expired session or key), 403 (wrong
 * project, missing or stale CSRF token, role not in `allowed`) or 429, and returns -1. */
int api_contact_auth(http_req_t *req, unsigned allowed, contact_principal_t *out);

/* "admin" | "supervisor" | "agent" | "dpo" <-> CONTACT_ROLE_*; 0 / NULL when unknown. */
unsigned contact_role_parse(const char *name);
const char *contact_role_name(unsigned role);

#endif
