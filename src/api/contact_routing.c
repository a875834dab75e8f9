/* contact_routing.c: the configurator's HTTP resources under /v1/projects/{p}/contact/:
 * channels (linked apps), skills, agents (settings and skills), categories and rules.
 * Handlers authenticate (api_contact_auth with a role mask), translate to routing.h calls
 * and reply; the rules themselves live in src/contact/config.c. */
#include "api/contact_routing.h"
#include "api/api.h"

#include <string.h>

int api_contact_routing_ctx(http_req_t *req, unsigned allowed, contact_ctx_t *cx)
{
    contact_principal_t p;
    if (api_contact_auth(req, allowed, &p) < 0) return -1;
    store_conn_t *c = api_conn(req);
    if (!c) return -1;
    arena_t *a = http_arena(req);
    char *project = arena_alloc(a, sizeof p.project_id), *user = arena_alloc(a, sizeof p.user_id),
         *actor = arena_alloc(a, sizeof p.actor);
    memcpy(project, p.project_id, sizeof p.project_id);
    memcpy(user, p.user_id, sizeof p.user_id);
    memcpy(actor, p.actor, sizeof p.actor);
    api_ctx_t *ctx = http_ctx(req);
    cx->conn = c;
    cx->project_id = project;
    cx->user_id = user;
    cx->role = p.is_key ? CONTACT_R_ADMIN : p.role;
    cx->actor = actor;
    cx->seal_key = ctx->seal_key;
    return 0;
}

const char *api_contact_id(http_req_t *req, const char *name)
{
    return api_id(req, name);
}

void api_contact_reply(http_req_t *req, json_t *result, const err_t *e)
{
    api_reply_result(req, 200, result, e);
}

static void reply_empty(http_req_t *req, int rc, const err_t *e)
{
    if (rc < 0)
        http_reply_err(req, e);
    else
        http_reply_json(req, 200, json_object());
}

/* ---- project settings ---- */

static void settings_get(http_req_t *req)
{
    CTX(R_ADMIN | R_SUP);
    api_contact_reply(req, contact_settings_get(&cx, &e), &e);
}

static void settings_update(http_req_t *req)
{
    CTX(R_ADMIN);
    BODY(b);
    api_contact_reply(req, contact_settings_update(&cx, b, &e), &e);
}

/* ---- channels ---- */

static void channels_list(http_req_t *req)
{
    CTX(R_ADMIN | R_SUP);
    api_contact_reply(req, contact_channel_list(&cx, &e), &e);
}

static void channels_link(http_req_t *req)
{
    CTX(R_ADMIN);
    BODY(b);
    api_contact_reply(req, contact_channel_link(&cx, b, &e), &e);
}

static void channels_unlink(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(app, "app_id");
    reply_empty(req, contact_channel_unlink(&cx, app, &e), &e);
}

/* ---- skills ---- */

static void skills_list(http_req_t *req)
{
    CTX(R_WORK);
    api_contact_reply(req, contact_skill_list(&cx, &e), &e);
}

static void skills_create(http_req_t *req)
{
    CTX(R_ADMIN);
    BODY(b);
    api_contact_reply(req, contact_skill_create(&cx, b, &e), &e);
}

static void skills_rename(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "skill_id");
    BODY(b);
    api_contact_reply(req, contact_skill_rename(&cx, id, b, &e), &e);
}

static void skills_delete(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "skill_id");
    reply_empty(req, contact_skill_delete(&cx, id, &e), &e);
}

/* ---- agents ---- */

static void agents_list(http_req_t *req)
{
    CTX(R_ADMIN | R_SUP);
    api_contact_reply(req, contact_agent_list(&cx, &e), &e);
}

static void agents_get(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "user_id");
    if (!(cx.role & (R_ADMIN | R_SUP)) && strcmp(id, cx.user_id) != 0) {
        http_reply_error(req, ERR_PERMISSION_DENIED, "agents see only their own settings");
        return;
    }
    api_contact_reply(req, contact_agent_get(&cx, id, &e), &e);
}

static void agents_update(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "user_id");
    BODY(b);
    api_contact_reply(req, contact_agent_update(&cx, id, b, &e), &e);
}

static void agents_skill_assign(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "user_id");
    ID(skill, "skill_id");
    api_contact_reply(req, contact_agent_skill_set(&cx, id, skill, http_json(req), 1, &e), &e);
}

static void agents_skill_toggle(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "user_id");
    ID(skill, "skill_id");
    BODY(b);
    api_contact_reply(req, contact_agent_skill_set(&cx, id, skill, b, 0, &e), &e);
}

static void agents_skill_unassign(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "user_id");
    ID(skill, "skill_id");
    reply_empty(req, contact_agent_skill_unassign(&cx, id, skill, &e), &e);
}

/* /me: the calling user as an agent. */
static int need_user(http_req_t *req, const contact_ctx_t *cx)
{
    if (cx->user_id[0]) return 0;
    http_reply_error(req, ERR_FAILED_PRECONDITION,
                     "a project access key is not an agent; log in as a user for /me");
    return -1;
}

static void me_get(http_req_t *req)
{
    CTX(R_WORK);
    if (need_user(req, &cx) < 0) return;
    api_contact_reply(req, contact_agent_get(&cx, cx.user_id, &e), &e);
}

static void me_update(http_req_t *req)
{
    CTX(R_WORK);
    if (need_user(req, &cx) < 0) return;
    BODY(b);
    api_contact_reply(req, contact_agent_update(&cx, cx.user_id, b, &e), &e);
}

static void me_skill_toggle(http_req_t *req)
{
    CTX(R_WORK);
    if (need_user(req, &cx) < 0) return;
    ID(skill, "skill_id");
    BODY(b);
    api_contact_reply(req, contact_agent_skill_set(&cx, cx.user_id, skill, b, 0, &e), &e);
}

/* ---- categories ---- */

static void categories_list(http_req_t *req)
{
    CTX(R_WORK);
    api_contact_reply(req, contact_category_list(&cx, &e), &e);
}

static void categories_get(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "category_id");
    api_contact_reply(req, contact_category_get(&cx, id, &e), &e);
}

static void categories_create(http_req_t *req)
{
    CTX(R_ADMIN);
    BODY(b);
    api_contact_reply(req, contact_category_create(&cx, b, &e), &e);
}

static void categories_update(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "category_id");
    BODY(b);
    api_contact_reply(req, contact_category_update(&cx, id, b, &e), &e);
}

static void categories_delete(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "category_id");
    reply_empty(req, contact_category_delete(&cx, id, &e), &e);
}

/* ---- rules ---- */

static void rules_list(http_req_t *req)
{
    CTX(R_ADMIN | R_SUP);
    api_contact_reply(req, contact_rule_list(&cx, &e), &e);
}

static void rules_create(http_req_t *req)
{
    CTX(R_ADMIN);
    BODY(b);
    api_contact_reply(req, contact_rule_create(&cx, b, &e), &e);
}

static void rules_update(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "rule_id");
    BODY(b);
    api_contact_reply(req, contact_rule_update(&cx, id, b, &e), &e);
}

static void rules_delete(http_req_t *req)
{
    CTX(R_ADMIN);
    ID(id, "rule_id");
    reply_empty(req, contact_rule_delete(&cx, id, &e), &e);
}

#define P "/v1/projects/{project_id}/contact"

const http_route_t api_contact_routing_routes[] = {
    {"GET", P "/settings", settings_get, 0},
    {"PATCH", P "/settings", settings_update, HTTP_JSON},
    {"GET", P "/channels", channels_list, 0},
    {"POST", P "/channels", channels_link, HTTP_JSON},
    {"DELETE", P "/channels/{app_id}", channels_unlink, 0},
    {"GET", P "/skills", skills_list, 0},
    {"POST", P "/skills", skills_create, HTTP_JSON},
    {"PATCH", P "/skills/{skill_id}", skills_rename, HTTP_JSON},
    {"DELETE", P "/skills/{skill_id}", skills_delete, 0},
    {"GET", P "/agents", agents_list, 0},
    {"GET", P "/agents/{user_id}", agents_get, 0},
    {"PATCH", P "/agents/{user_id}", agents_update, HTTP_JSON},
    {"PUT", P "/agents/{user_id}/skills/{skill_id}", agents_skill_assign, HTTP_JSON},
    {"PATCH", P "/agents/{user_id}/skills/{skill_id}", agents_skill_toggle, HTTP_JSON},
    {"DELETE", P "/agents/{user_id}/skills/{skill_id}", agents_skill_unassign, 0},
    {"GET", P "/me", me_get, 0},
    {"PATCH", P "/me", me_update, HTTP_JSON},
    {"PATCH", P "/me/skills/{skill_id}", me_skill_toggle, HTTP_JSON},
    {"GET", P "/categories", categories_list, 0},
    {"POST", P "/categories", categories_create, HTTP_JSON},
    {"GET", P "/categories/{category_id}", categories_get, 0},
    {"PATCH", P "/categories/{category_id}", categories_update, HTTP_JSON},
    {"DELETE", P "/categories/{category_id}", categories_delete, 0},
    {"GET", P "/rules", rules_list, 0},
    {"POST", P "/rules", rules_create, HTTP_JSON},
    {"PATCH", P "/rules/{rule_id}", rules_update, HTTP_JSON},
    {"DELETE", P "/rules/{rule_id}", rules_delete, 0},
};
const size_t api_contact_routing_nroutes =
    sizeof api_contact_routing_routes / sizeof api_contact_routing_routes[0];
