/* contact_session.h: the HTTP side of contact sessions (cookie in, principal out), used by
 * contact_auth.c and the /auth handlers. */
#ifndef PARLEY_API_CONTACT_SESSION_H
#define PARLEY_API_CONTACT_SESSION_H

#include "api/contact_auth.h"

#include <stddef.h>

#define CONTACT_SESSION_COOKIE "parley_session"

/* 1 and the cookie's value in out when the request carries the session cookie, else 0. */
int contact_session_cookie(http_req_t *req, char *out, size_t cap);
/* Resolve a session token (and check CSRF on state-changing methods): 0 with *out filled,
 * or -1 after replying 401/403. */
int contact_session_authenticate(http_req_t *req, const char *token, contact_principal_t *out);

#endif
