/* contact_session.c: the HTTP side of contact sessions (first cut: sessions not yet
 * stored; every cookie is refused). */
#include "api/contact_session.h"

#include <stdio.h>
#include <string.h>

int contact_session_cookie(http_req_t *req, char *out, size_t cap)
{
    const char *h = http_header(req, "Cookie");
    size_t nlen = strlen(CONTACT_SESSION_COOKIE);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, CONTACT_SESSION_COOKIE, nlen) == 0 && p[nlen] == '=') {
            p += nlen + 1;
            size_t n = strcspn(p, ";");
            if (n >= cap) n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

int contact_session_authenticate(http_req_t *req, const char *token, contact_principal_t *out)
{
    (void)token;
    (void)out;
    http_reply_error(req, ERR_UNAUTHENTICATED, "invalid or expired session; log in again");
    return -1;
}
