/* contact_auth.c: the contact center's authentication and role check (contact_auth.h).
 * A request carrying the session cookie is a user's; anything else goes through the
 * Conversation API's key check (api_authenticate), which acts with admin rights. */
#include "api/contact_auth.h"
#include "api/api.h"
#include "api/contact_session.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const role_names[] = {"admin", "supervisor", "agent", "dpo"};

unsigned contact_role_parse(const char *name)
{
    for (unsigned i = 0; name && i < 4; i++)
        if (strcmp(name, role_names[i]) == 0) return 1u << i;
    return 0;
}

const char *contact_role_name(unsigned role)
{
    for (unsigned i = 0; i < 4; i++)
        if (role == 1u << i) return role_names[i];
    return NULL;
}

/* "admin, supervisor" for a mask, for 403 messages. */
static void roles_text(unsigned mask, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 4; i++)
        if (mask & (1u << i))
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "",
                                  role_names[i]);
}

static int check_role(http_req_t *req, unsigned allowed, const contact_principal_t *p)
{
    if (p->is_key || (p->role & allowed)) return 0;
    char want[64];
    roles_text(allowed, want, sizeof want);
    http_reply_error(req, ERR_PERMISSION_DENIED, "role %s may not %s %s; this needs one of: %s",
                     contact_role_name(p->role) ? contact_role_name(p->role) : "(none)",
                     http_method(req), http_path(req), want);
    return -1;
}

int api_contact_auth(http_req_t *req, unsigned allowed, contact_principal_t *out)
{
    memset(out, 0, sizeof *out);
    char token[128];
    if (!http_header(req, "Authorization") &&
        contact_session_cookie(req, token, sizeof token) == 1) {
        if (contact_session_authenticate(req, token, out) < 0) return -1;
        return check_role(req, allowed, out);
    }
    if (!http_header(req, "Authorization")) {
        http_add_header(req, "WWW-Authenticate", "Basic realm=\"parley\", Bearer");
        http_reply_error(req, ERR_UNAUTHENTICATED,
                         "not signed in: log in with POST /auth/login (session cookie) or use a "
                         "project access key (Basic key_id:key_secret or Bearer token)");
        return -1;
    }
    if (api_authenticate(req) < 0) return -1; /* replied; also checks {project_id} */
    snprintf(out->project_id, sizeof out->project_id, "%s", http_principal_project(req));
    out->role = CONTACT_ROLE_ADMIN;
    out->is_key = 1;
    snprintf(out->actor, sizeof out->actor, "key:%s", http_principal_key(req));
    return 0;
}
