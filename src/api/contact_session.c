/* contact_session.c: the HTTP side of contact sessions: reading the cookie, resolving it
 * to a user, and the CSRF check for state-changing requests. */
#include "api/contact_session.h"
#include "api/api.h"
#include "base/clock.h"

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
            size_t n = strcspn(p, "; ");
            if (n >= cap) n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

void contact_login_opts(http_req_t *req, contact_login_opts_t *o)
{
    const config_t *cfg = ((api_ctx_t *)http_ctx(req))->cfg;
    o->idle_ms = cfg->session_idle * 1000;
    o->max_ms = cfg->session_max * 1000;
    o->failures = cfg->login_failures;
    o->window_ms = cfg->login_window * 1000;
}

static int state_changing(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

int contact_session_authenticate(http_req_t *req, const char *token, contact_principal_t *out)
{
    store_conn_t *c = api_conn(req);
    if (!c) return -1;
    contact_login_opts_t o;
    contact_login_opts(req, &o);
    contact_user_t u;
    err_t e;
    if (contact_session_resolve(c, &o, token, clock_now_ms(), &u, &e) < 0) {
        http_reply_err(req, &e);
        return -1;
    }
    if (state_changing(http_method(req))) {
        const char *csrf = http_header(req, CONTACT_CSRF_HEADER);
        if (!csrf || !*csrf) {
            http_reply_error(req, ERR_PERMISSION_DENIED,
                             "missing " CONTACT_CSRF_HEADER " header: a %s made with the session "
                             "cookie needs the CSRF token returned by POST /auth/login and GET "
                             "/auth/me",
                             http_method(req));
            return -1;
        }
        if (!contact_csrf_valid(token, csrf)) {
            http_reply_error(req, ERR_PERMISSION_DENIED,
                             CONTACT_CSRF_HEADER " is stale or wrong for this session; use the "
                                                 "csrf_token from GET /auth/me");
            return -1;
        }
    }
    const char *want = http_param(req, "project_id");
    if (want && strcmp(want, u.project_id) != 0) {
        http_reply_error(req, ERR_PERMISSION_DENIED, "this session has no access to project %.64s",
                         want);
        return -1;
    }
    snprintf(out->project_id, sizeof out->project_id, "%s", u.project_id);
    snprintf(out->user_id, sizeof out->user_id, "%s", u.id);
    out->role = contact_role_parse(u.role);
    out->is_key = 0;
    snprintf(out->actor, sizeof out->actor, "user:%s", u.id);
    http_set_principal(req, u.project_id, "");
    return 0;
}
