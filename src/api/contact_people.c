/* contact_people.c: HTTP handlers for logging in (/auth/...), invitations and user
 * management (/v1/projects/{project_id}/contact/users|invitations). The rules live in
 * src/contact/people.h; this file maps them to HTTP, cookies and role checks. */
#include "api/api.h"
#include "api/contact_auth.h"
#include "api/contact_session.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "contact/people.h"
#include "contact/routing.h"

#include <stdio.h>
#include <string.h>

static const config_t *cfg_of(http_req_t *req)
{
    return ((api_ctx_t *)http_ctx(req))->cfg;
}

static json_t *time_json(int64_t ms)
{
    char t[32];
    clock_format_rfc3339(ms, t, sizeof t);
    return json_string(t);
}

static void set_cookie(http_req_t *req, const char *token, int64_t max_age_s)
{
    char v[256];
    snprintf(v, sizeof v, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
             CONTACT_SESSION_COOKIE, token, (long long)max_age_s,
             cfg_of(req)->tls_cert[0] ? "; Secure" : "");
    http_add_header(req, "Set-Cookie", v);
}

static json_t *user_json(const contact_user_t *u)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", u->id, "email", u->email, "role", u->role,
                     "project_id", u->project_id);
}

/* POST /auth/login {email, password, project_id?} */
static void auth_login(http_req_t *req)
{
    json_t *b = api_body(req);
    store_conn_t *c = b ? api_conn(req) : NULL;
    if (!c) return;
    const char *email = NULL, *password = NULL, *project = NULL;
    err_t e;
    if (jsonx_require(jsonx_str(b, "email", "email", &email, &e), "email", &e) < 0 ||
        jsonx_require(jsonx_str(b, "password", "password", &password, &e), "password", &e) < 0 ||
        jsonx_str(b, "project_id", "project_id", &project, &e) < 0) {
        http_reply_err(req, &e);
        return;
    }
    contact_login_opts_t o;
    contact_login_opts(req, &o);
    char ip[64], token[CONTACT_TOKEN_MAX], csrf[CONTACT_TOKEN_MAX];
    http_client_ip(req, ip, sizeof ip);
    contact_user_t u;
    int64_t retry = 0, now = clock_now_ms();
    if (contact_login(c, &o, email, password, project, ip, now, token, &u, &retry, &e) < 0) {
        if (e.code == ERR_RESOURCE_EXHAUSTED) {
            char s[32];
            snprintf(s, sizeof s, "%lld", (long long)retry);
            http_add_header(req, "Retry-After", s);
        }
        http_reply_err(req, &e);
        return;
    }
    contact_csrf_token(token, csrf);
    set_cookie(req, token, o.max_ms / 1000);
    http_add_header(req, "Cache-Control", "no-store");
    http_reply_json(req, 200,
                    json_pack("{s:o, s:s, s:o}", "user", user_json(&u), "csrf_token", csrf,
                              "expires_at", time_json(now + o.max_ms)));
}

/* POST /auth/logout (session cookie + CSRF token) */
static void auth_logout(http_req_t *req)
{
    char token[CONTACT_TOKEN_MAX];
    contact_principal_t p;
    if (contact_session_cookie(req, token, sizeof token) != 1) {
        http_reply_error(req, ERR_UNAUTHENTICATED, "not logged in: no session cookie");
        return;
    }
    if (contact_session_authenticate(req, token, &p) < 0) return;
    err_t e;
    store_conn_t *c = api_conn(req);
    if (!c) return;
    if (contact_session_end(c, token, clock_now_ms(), &e) < 0) {
        http_reply_err(req, &e);
        return;
    }
    set_cookie(req, "", 0);
    http_reply_json(req, 200, json_object());
}

/* GET /auth/me: the session's user and CSRF token, or the access key's principal. */
static void auth_me(http_req_t *req)
{
    char token[CONTACT_TOKEN_MAX], csrf[CONTACT_TOKEN_MAX];
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ANY, &p) < 0) return;
    if (p.is_key) {
        http_reply_json(req, 200,
                        json_pack("{s:{s:s, s:s, s:s}}", "key", "id", p.actor + 4, "project_id",
                                  p.project_id, "role", "admin"));
        return;
    }
    store_conn_t *c = api_conn(req);
    err_t e;
    json_t *u = c ? contact_user_get(c, p.project_id, p.user_id, &e) : NULL;
    if (!c) return;
    if (!u) {
        http_reply_err(req, &e);
        return;
    }
    json_object_set_new(u, "project_id", json_string(p.project_id));
    contact_session_cookie(req, token, sizeof token);
    contact_csrf_token(token, csrf);
    http_add_header(req, "Cache-Control", "no-store");
    http_reply_json(req, 200, json_pack("{s:o, s:s}", "user", u, "csrf_token", csrf));
}

/* GET /auth/invitations/{token}: what the invitation is for. */
static void invitation_peek(http_req_t *req)
{
    store_conn_t *c = api_conn(req);
    if (!c) return;
    err_t e;
    json_t *r = contact_invitation_peek(c, http_param(req, "token"), clock_now_ms(), &e);
    api_reply_result(req, 200, r, &e);
}

/* POST /auth/invitations/{token} {password}: join. */
static void invitation_accept(http_req_t *req)
{
    json_t *b = api_body(req);
    store_conn_t *c = b ? api_conn(req) : NULL;
    if (!c) return;
    const char *password = NULL;
    err_t e;
    contact_user_t u;
    if (jsonx_require(jsonx_str(b, "password", "password", &password, &e), "password", &e) < 0 ||
        contact_invitation_accept(c, http_param(req, "token"), password, clock_now_ms(), &u, &e) <
            0) {
        http_reply_err(req, &e);
        return;
    }
    log_kv(LOG_INFO, "invitation accepted", "project_id", u.project_id, "user_id", u.id, "role",
           u.role);
    http_reply_json(req, 201, json_pack("{s:o}", "user", user_json(&u)));
}

/* ---- /v1/projects/{project_id}/contact/users ---- */

static void users_list(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN | CONTACT_ROLE_SUPERVISOR, &p) < 0) return;
    store_conn_t *c = api_conn(req);
    if (!c) return;
    err_t e;
    api_reply_result(req, 200, contact_user_list(c, p.project_id, &e), &e);
}

static void users_get(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN | CONTACT_ROLE_SUPERVISOR, &p) < 0) return;
    const char *id = api_id(req, "user_id");
    store_conn_t *c = id ? api_conn(req) : NULL;
    if (!c) return;
    err_t e;
    api_reply_result(req, 200, contact_user_get(c, p.project_id, id, &e), &e);
}

static void users_update(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN, &p) < 0) return;
    const char *id = api_id(req, "user_id");
    json_t *b = id ? api_body(req) : NULL;
    store_conn_t *c = b ? api_conn(req) : NULL;
    if (!c) return;
    err_t e;
    json_t *r = contact_user_update(c, p.project_id, id, b, clock_now_ms(), &e);
    if (r) {
        log_kv(LOG_INFO, "contact user changed", "project_id", p.project_id, "user_id", id, "actor",
               p.actor);
        /* Routing re-reads the agent at once: a deactivated one's conversations requeue. */
        err_t qe;
        if (contact_queue_agent_changed(c, p.project_id, id, &qe) < 0)
            log_kv(LOG_WARN, "routing did not take the user change", "user_id", id, "error",
                   qe.message);
    }
    api_reply_result(req, 200, r, &e);
}

/* ---- invitations ---- */

static void invitations_list(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN, &p) < 0) return;
    store_conn_t *c = api_conn(req);
    if (!c) return;
    err_t e;
    api_reply_result(req, 200, contact_invitation_list(c, p.project_id, &e), &e);
}

/* POST {email, role}: store the invitation, then mail the link (or log it without SMTP).
 * The link is also in the answer, so an admin can pass it on by other means. */
static void invitations_create(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN, &p) < 0) return;
    json_t *b = api_body(req);
    store_conn_t *c = b ? api_conn(req) : NULL;
    if (!c) return;
    const config_t *cfg = cfg_of(req);
    const char *email = NULL, *role = NULL;
    char token[CONTACT_TOKEN_MAX];
    err_t e;
    json_t *inv = NULL;
    if (jsonx_require(jsonx_str(b, "email", "email", &email, &e), "email", &e) < 0 ||
        jsonx_require(jsonx_str(b, "role", "role", &role, &e), "role", &e) < 0 ||
        !(inv = contact_invitation_create(c, p.project_id, email, role, p.actor,
                                          cfg->invitation_ttl * 1000, clock_now_ms(), token, &e))) {
        http_reply_err(req, &e);
        return;
    }
    size_t ul = strlen(cfg->public_url);
    while (ul > 0 && cfg->public_url[ul - 1] == '/')
        ul--;
    char link[512];
    snprintf(link, sizeof link, "%.*s/auth/invitations/%s", (int)ul, cfg->public_url, token);
    const char *addr = json_string_value(json_object_get(inv, "email"));
    const char *delivery = "log";
    if (cfg->smtp_host[0]) {
        contact_smtp_t smtp = {cfg->smtp_host, cfg->smtp_user, cfg->smtp_password, cfg->smtp_from,
                               (int)cfg->smtp_port};
        char body[1024];
        snprintf(body, sizeof body,
                 "You have been invited to the Parley contact center as %s.\n\n"
                 "Set your password and join here:\n%s\n\n"
                 "The link works once and expires at %s.\n",
                 role, link, json_string_value(json_object_get(inv, "expires_at")));
        err_t me;
        if (contact_mail_send(&smtp, addr, "Your Parley invitation", body, &me) == 0) {
            delivery = "mail";
        } else {
            delivery = "mail_failed";
            log_kv(LOG_WARN, "invitation mail failed", "error", me.message, "email", addr);
        }
    }
    if (strcmp(delivery, "mail") != 0)
        log_kv(LOG_INFO, "invitation link", "project_id", p.project_id, "email", addr, "role", role,
               "link", link);
    json_object_set_new(inv, "link", json_string(link));
    json_object_set_new(inv, "delivery", json_string(delivery));
    http_reply_json(req, 201, inv);
}

static void invitations_revoke(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN, &p) < 0) return;
    const char *id = api_id(req, "invitation_id");
    store_conn_t *c = id ? api_conn(req) : NULL;
    if (!c) return;
    err_t e;
    if (contact_invitation_revoke(c, p.project_id, id, clock_now_ms(), &e) < 0)
        http_reply_err(req, &e);
    else
        http_reply_json(req, 200, json_object());
}

#define CP "/v1/projects/{project_id}/contact"
const http_route_t api_contact_people_routes[] = {
    {"POST", "/auth/login", auth_login, HTTP_JSON},
    {"POST", "/auth/logout", auth_logout, 0},
    {"GET", "/auth/me", auth_me, 0},
    {"GET", "/auth/invitations/{token}", invitation_peek, 0},
    {"POST", "/auth/invitations/{token}", invitation_accept, HTTP_JSON},
    {"GET", CP "/users", users_list, 0},
    {"GET", CP "/users/{user_id}", users_get, 0},
    {"PATCH", CP "/users/{user_id}", users_update, HTTP_JSON},
    {"GET", CP "/invitations", invitations_list, 0},
    {"POST", CP "/invitations", invitations_create, HTTP_JSON},
    {"DELETE", CP "/invitations/{invitation_id}", invitations_revoke, 0},
};
const size_t api_contact_people_nroutes =
    sizeof api_contact_people_routes / sizeof api_contact_people_routes[0];
