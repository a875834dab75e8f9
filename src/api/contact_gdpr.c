/* contact_gdpr.c: HTTP handlers for the GDPR tools under /v1/projects/{project_id}/contact:
 * the audit log (admins, DPOs), DPO search and anonymize, and contacts CSV export/import.
 * Rules live in src/contact/audit.h and gdpr.h. */
#include "api/api.h"
#include "api/contact_auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "contact/audit.h"
#include "contact/gdpr.h"

#include <string.h>
#include <strings.h>

/* The convo context acting as the authenticated principal. */
static int ctx_as(http_req_t *req, const contact_principal_t *p, convo_ctx_t *cx)
{
    if (api_convo_ctx(req, cx) < 0) return -1;
    cx->actor = p->actor;
    return 0;
}

static int time_param(http_req_t *req, const char *name, int64_t *out)
{
    const char *v = http_query(req, name);
    *out = 0;
    if (!v || !*v) return 0;
    if (clock_parse_rfc3339(v, out) < 0) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "%s \"%.64s\" is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)", name,
                         v);
        return -1;
    }
    return 0;
}

/* GET .../audit?subject=&actor=&attribute=&from=&to=&page_size=&page_token= */
static void audit_search(http_req_t *req)
{
    contact_principal_t p;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN | CONTACT_ROLE_DPO, &p) < 0) return;
    contact_audit_query_t q = {.subject = http_query(req, "subject"),
                               .actor = http_query(req, "actor"),
                               .attribute = http_query(req, "attribute"),
                               .page_size = http_query(req, "page_size"),
                               .page_token = http_query(req, "page_token")};
    if (time_param(req, "from", &q.from_ms) < 0 || time_param(req, "to", &q.to_ms) < 0) return;
    store_conn_t *c = api_conn(req);
    if (!c) return;
    err_t e;
    api_reply_result(req, 200, contact_audit_search(c, p.project_id, &q, &e), &e);
}

/* GET .../gdpr/search?phone=|email=|name=|identity= (exactly one) */
static void gdpr_search(http_req_t *req)
{
    contact_principal_t p;
    convo_ctx_t cx;
    if (api_contact_auth(req, CONTACT_ROLE_DPO, &p) < 0 || ctx_as(req, &p, &cx) < 0) return;
    static const char *const fields[] = {"phone", "email", "name", "identity", NULL};
    const char *field = NULL, *value = NULL;
    for (int i = 0; fields[i]; i++) {
        const char *v = http_query(req, fields[i]);
        if (!v) continue;
        if (field) {
            http_reply_error(req, ERR_INVALID_ARGUMENT,
                             "give exactly one of phone, email, name, identity (got %s and %s)",
                             field, fields[i]);
            return;
        }
        field = fields[i];
        value = v;
    }
    if (!field) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "missing search: give one of phone=, email=, name=, identity=");
        return;
    }
    err_t e;
    api_reply_result(req, 200, contact_gdpr_search(&cx, field, value, &e), &e);
}

/* POST .../gdpr/contacts/{contact_id}:anonymize */
static void gdpr_anonymize(http_req_t *req)
{
    contact_principal_t p;
    convo_ctx_t cx;
    if (api_contact_auth(req, CONTACT_ROLE_DPO, &p) < 0 || ctx_as(req, &p, &cx) < 0) return;
    const char *id = api_id(req, "contact_id");
    if (!id) return;
    err_t e;
    json_t *r = contact_gdpr_anonymize(&cx, id, &e);
    if (r)
        log_kv(LOG_INFO, "contact anonymized", "project_id", p.project_id, "contact_id", id,
               "actor", p.actor);
    api_reply_result(req, 200, r, &e);
}

/* GET .../contacts:export -> text/csv */
static void contacts_export(http_req_t *req)
{
    contact_principal_t p;
    convo_ctx_t cx;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN | CONTACT_ROLE_DPO, &p) < 0 ||
        ctx_as(req, &p, &cx) < 0)
        return;
    buf_t out;
    buf_init(&out);
    err_t e;
    if (contact_csv_export(&cx, &out, &e) < 0) {
        buf_free(&out);
        http_reply_err(req, &e);
        return;
    }
    http_add_header(req, "Content-Disposition", "attachment; filename=\"contacts.csv\"");
    http_add_header(req, "Cache-Control", "no-store");
    http_reply_raw(req, 200, "text/csv; charset=utf-8", out.data, out.len);
    buf_free(&out);
}

/* POST .../contacts:import with a text/csv body */
static void contacts_import(http_req_t *req)
{
    contact_principal_t p;
    convo_ctx_t cx;
    if (api_contact_auth(req, CONTACT_ROLE_ADMIN, &p) < 0 || ctx_as(req, &p, &cx) < 0) return;
    const char *ctype = http_header(req, "Content-Type");
    if (!ctype || strncasecmp(ctype, "text/csv", 8) != 0 ||
        (ctype[8] && ctype[8] != ';' && ctype[8] != ' ')) {
        http_reply_error(req, ERR_MEDIA_TYPE, "Content-Type must be text/csv, got %s",
                         ctype ? ctype : "none");
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    json_t *details = NULL;
    err_t e;
    json_t *r = contact_csv_import(&cx, body ? body : "", body ? len : 0, &details, &e);
    if (r) {
        json_decref(details);
        api_reply_result(req, 200, r, &e);
        return;
    }
    json_t *err = http_error_body(e.code, e.message);
    json_array_extend(json_object_get(json_object_get(err, "error"), "details"), details);
    json_decref(details);
    http_reply_json(req, err_http_status(e.code), err);
}

#define CP "/v1/projects/{project_id}/contact"
const http_route_t api_contact_gdpr_routes[] = {
    {"GET", CP "/audit", audit_search, 0},
    {"GET", CP "/gdpr/search", gdpr_search, 0},
    {"POST", CP "/gdpr/contacts/{contact_id}:anonymize", gdpr_anonymize, 0},
    {"GET", CP "/contacts:export", contacts_export, 0},
    {"POST", CP "/contacts:import", contacts_import, HTTP_RAW},
};
const size_t api_contact_gdpr_nroutes =
    sizeof api_contact_gdpr_routes / sizeof api_contact_gdpr_routes[0];
