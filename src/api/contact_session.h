/* contact_session.h: the HTTP side of contact sessions (cookie in, principal out), shared
 * by contact_auth.c and the /auth handlers in contact_people.c. */
#ifndef PARLEY_API_CONTACT_SESSION_H
#define PARLEY_API_CONTACT_SESSION_H

#include "api/contact_auth.h"
#include "contact/people.h"

#include <stddef.h>

#define CONTACT_SESSION_COOKIE "parley_session"
#define CONTACT_CSRF_HEADER    "X-CSRF-Token"

/* 1 and the cookie's value in out when the request carries the session cookie, else 0. */
int contact_session_cookie(http_req_t *req, char *out, size_t cap);
/* Session and login limits from the server's settings. */
void contact_login_opts(http_req_t *req, contact_login_opts_t *o);
/* Resolve a session token and, on POST/PUT/PATCH/DELETE, check the X-CSRF-Token header:
 * 0 with *out filled (and the request's principal set), or -1 after replying 401/403. */
int contact_session_authenticate(http_req_t *req, const char *token, contact_principal_t *out);

#endif
