/* flows.c (api): the Flows admin API, in Node-RED's admin API shapes under
 * /v1/projects/{project_id}/: the whole set (GET/POST flows), one tab (GET/PUT/DELETE
 * flows/{tab_id}, POST flow), revisions and restore, the inject button, and the debug
 * stream (GET debug as JSON or SSE). Deploys keep the exact text sent for the whole set;
 * tab edits re-serialise the document. */
#include "api/api.h"
#include "base/jsonx.h"
#include "base/ulid.h"
#include "flows/flows.h"
#include "flows/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static void reply_problems(http_req_t *req, const err_t *e, json_t *problems)
{
    if (!problems) {
        http_reply_err(req, e);
        return;
    }
    json_t *body = http_error_body(e->code, e->message);
    json_object_set_new(json_object_get(body, "error"), "details", problems);
    http_reply_json(req, err_http_status(e->code), body);
}

/* Skip one JSON value starting at s (whitespace first); returns the end or NULL. */
static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    return s;
}

static const char *skip_value(const char *s, const char *end)
{
    s = skip_ws(s, end);
    if (s >= end) return NULL;
    if (*s == '"') {
        for (s++; s < end; s++) {
            if (*s == '\\')
                s++;
            else if (*s == '"')
                return s + 1;
        }
        return NULL;
    }
    if (*s == '{' || *s == '[') {
        int depth = 0;
        for (; s < end; s++) {
            if (*s == '"') {
                s = skip_value(s, end);
                if (!s) return NULL;
                s--;
            } else if (*s == '{' || *s == '[')
                depth++;
            else if (*s == '}' || *s == ']') {
                if (--depth == 0) return s + 1;
            }
        }
        return NULL;
    }
    while (s < end && *s != ',' && *s != '}' && *s != ']' && *s != ' ' && *s != '\n' &&
           *s != '\r' && *s != '\t')
        s++;
    return s;
}

/* The raw text of member `key` of the top-level object in text (malloc'd) or NULL. */
static char *raw_member(const char *text, size_t len, const char *key)
{
    const char *end = text + len, *s = skip_ws(text, end);
    if (s >= end || *s != '{') return NULL;
    s++;
    size_t klen = strlen(key);
    for (;;) {
        s = skip_ws(s, end);
        if (s >= end || *s != '"') return NULL;
        const char *ks = s + 1, *ke = skip_value(s, end);
        if (!ke) return NULL;
        int match = (size_t)(ke - 1 - ks) == klen && memcmp(ks, key, klen) == 0;
        s = skip_ws(ke, end);
        if (s >= end || *s != ':') return NULL;
        const char *vs = skip_ws(s + 1, end), *ve = skip_value(vs, end);
        if (!ve) return NULL;
        if (match) return strndup(vs, (size_t)(ve - vs));
        s = skip_ws(ve, end);
        if (s < end && *s == ',') {
            s++;
            continue;
        }
        return NULL;
    }
}

static const char *actor_of(http_req_t *req, const convo_ctx_t *cx)
{
    (void)req;
    return cx->actor ? cx->actor : "";
}

static void deploy_and_reply(http_req_t *req, convo_ctx_t *cx, const char *text,
                             const char *rev_expected, const char *note, int status,
                             const char *tab_id)
{
    char rev[32];
    json_t *problems = NULL;
    err_t e;
    if (flows_deploy(cx->conn, cx->project_id, text, rev_expected, actor_of(req, cx), note, rev,
                     &problems, &e) < 0) {
        reply_problems(req, &e, problems);
        return;
    }
    flows_runtime_sync(cx->project_id, 5000); /* live for the next request */
    json_t *body =
        tab_id ? json_pack("{s:s,s:s}", "id", tab_id, "rev", rev) : json_pack("{s:s}", "rev", rev);
    http_reply_json(req, status, body);
}

/* ---- the whole set ---- */

static void flows_get_all(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    char *text, rev[32];
    err_t e;
    if (flows_export(cx.conn, cx.project_id, &text, rev, &e) < 0) {
        http_reply_err(req, &e);
        return;
    }
    const char *ver = http_header(req, "Node-RED-API-Version");
    if (ver && strcmp(ver, "v1") == 0) { /* Node-RED's v1 shape: the bare array */
        http_reply_raw(req, 200, "application/json", text, strlen(text));
        free(text);
        return;
    }
    size_t len = strlen(text) + strlen(rev) + 32;
    char *body = malloc(len);
    int n = snprintf(body, len, "{\"rev\":\"%s\",\"flows\":%s}", rev, text);
    http_reply_raw(req, 200, "application/json", body, (size_t)n);
    free(body);
    free(text);
}

static void flows_post_all(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    json_t *b = http_json(req);
    size_t len;
    const char *raw = http_body(req, &len);
    if (!b) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "request body is empty; expected {\"flows\": [...], \"rev\": \"...\"}");
        return;
    }
    char *text = NULL;
    const char *rev = NULL;
    if (json_is_array(b))
        text = strndup(raw, len); /* Node-RED API v1: the bare array */
    else if (json_is_object(b)) {
        json_t *flows = json_object_get(b, "flows");
        if (!json_is_array(flows)) {
            http_reply_error(req, ERR_INVALID_ARGUMENT,
                             flows ? "flows must be an array of nodes"
                                   : "missing required field flows");
            return;
        }
        json_t *r = json_object_get(b, "rev");
        if (r && !json_is_string(r) && !json_is_null(r)) {
            http_reply_error(req, ERR_INVALID_ARGUMENT, "rev must be a string");
            return;
        }
        rev = json_string_value(r);
        text = raw_member(raw, len, "flows");
        if (!text) text = jsonx_dump(flows);
    } else {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "request body must be {\"flows\": [...]} or an array of nodes");
        return;
    }
    deploy_and_reply(req, &cx, text, rev, "deploy", 200, NULL);
    free(text);
}

/* ---- one tab ---- */

static json_t *load_doc(http_req_t *req, convo_ctx_t *cx, char rev[32])
{
    char *text;
    err_t e;
    if (flows_export(cx->conn, cx->project_id, &text, rev, &e) < 0) {
        http_reply_err(req, &e);
        return NULL;
    }
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_array(doc)) {
        json_decref(doc);
        doc = json_array();
    }
    return doc;
}

static int is_config_node(json_t *n)
{
    const flows_node_type_t *t = flows_type_find(json_string_value(json_object_get(n, "type")));
    return t && t->config_only;
}

static json_t *find_tab(json_t *doc, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(doc, i, n)
    {
        const char *nid = json_string_value(json_object_get(n, "id"));
        const char *t = json_string_value(json_object_get(n, "type"));
        if (nid && t && strcmp(nid, id) == 0 && strcmp(t, "tab") == 0) return n;
    }
    return NULL;
}

static void flows_get_tab(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = http_param(req, "tab_id");
    char rev[32];
    json_t *doc = load_doc(req, &cx, rev);
    if (!doc) return;
    json_t *out;
    size_t i;
    json_t *n;
    if (strcmp(id, "global") == 0) { /* Node-RED: config nodes and subflows outside tabs */
        out = json_pack("{s:s,s:[],s:[]}", "id", "global", "configs", "subflows");
        json_array_foreach(doc, i, n)
        {
            const char *z = json_string_value(json_object_get(n, "z"));
            const char *t = json_string_value(json_object_get(n, "type"));
            if (t && strcmp(t, "subflow") == 0)
                json_array_append(json_object_get(out, "subflows"), n);
            else if ((!z || !*z) && t && strcmp(t, "tab") != 0)
                json_array_append(json_object_get(out, "configs"), n);
        }
    } else {
        json_t *tab = find_tab(doc, id);
        if (!tab) {
            json_decref(doc);
            http_reply_error(req, ERR_NOT_FOUND, "flow tab %s not found", id);
            return;
        }
        out = json_deep_copy(tab);
        json_object_del(out, "type");
        json_t *nodes = json_array(), *configs = json_array();
        json_array_foreach(doc, i, n)
        {
            const char *z = json_string_value(json_object_get(n, "z"));
            if (!z || strcmp(z, id) != 0) continue;
            json_array_append(is_config_node(n) ? configs : nodes, n);
        }
        json_object_set_new(out, "nodes", nodes);
        json_object_set_new(out, "configs", configs);
    }
    json_decref(doc);
    http_reply_json(req, 200, out);
}

/* Replace (or add) tab `id` in doc with the body's tab object. -1 after replying. */
static int put_tab(http_req_t *req, json_t *doc, const char *id, json_t *body)
{
    json_t *nodes = json_object_get(body, "nodes"), *configs = json_object_get(body, "configs");
    if ((nodes && !json_is_array(nodes)) || (configs && !json_is_array(configs))) {
        http_reply_error(req, ERR_INVALID_ARGUMENT, "nodes and configs must be arrays");
        return -1;
    }
    json_t *bid = json_object_get(body, "id");
    if (bid && (!json_is_string(bid) || strcmp(json_string_value(bid), id) != 0)) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "id in the body (%s) does not match the path (%s)",
                         json_is_string(bid) ? json_string_value(bid) : "not a string", id);
        return -1;
    }
    /* remove the old tab and its nodes, keeping the tab's position */
    size_t pos = json_array_size(doc);
    for (size_t i = 0; i < json_array_size(doc);) {
        json_t *n = json_array_get(doc, i);
        const char *nid = json_string_value(json_object_get(n, "id"));
        const char *z = json_string_value(json_object_get(n, "z"));
        if (nid && strcmp(nid, id) == 0 && pos == json_array_size(doc)) pos = i;
        if ((nid && strcmp(nid, id) == 0) || (z && strcmp(z, id) == 0))
            json_array_remove(doc, i);
        else
            i++;
    }
    if (pos > json_array_size(doc)) pos = json_array_size(doc);
    json_t *tab = json_deep_copy(body);
    json_object_del(tab, "nodes");
    json_object_del(tab, "configs");
    json_object_set_new(tab, "id", json_string(id));
    json_object_set_new(tab, "type", json_string("tab"));
    json_array_insert_new(doc, pos, tab);
    json_t *lists[2] = {nodes, configs};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *n;
        json_array_foreach(lists[l], i, n)
        {
            json_t *c = json_deep_copy(n);
            if (json_is_object(c)) json_object_set_new(c, "z", json_string(id));
            json_array_append_new(doc, c);
        }
    }
    return 0;
}

static void tab_deploy(http_req_t *req, convo_ctx_t *cx, json_t *doc, const char *note, int status,
                       const char *tab_id)
{
    char *text = jsonx_dump(doc);
    deploy_and_reply(req, cx, text, NULL, note, status, tab_id);
    free(text);
}

static void flows_put_tab(http_req_t *req)
{
    convo_ctx_t cx;
    json_t *body;
    if (api_convo_ctx(req, &cx) < 0 || !(body = api_body(req))) return;
    const char *id = http_param(req, "tab_id");
    char rev[32];
    json_t *doc = load_doc(req, &cx, rev);
    if (!doc) return;
    if (!find_tab(doc, id)) {
        json_decref(doc);
        http_reply_error(req, ERR_NOT_FOUND, "flow tab %s not found", id);
        return;
    }
    if (put_tab(req, doc, id, body) == 0) tab_deploy(req, &cx, doc, "tab update", 200, id);
    json_decref(doc);
}

static void flows_post_tab(http_req_t *req)
{
    convo_ctx_t cx;
    json_t *body;
    if (api_convo_ctx(req, &cx) < 0 || !(body = api_body(req))) return;
    char rev[32];
    json_t *doc = load_doc(req, &cx, rev);
    if (!doc) return;
    const char *id = json_string_value(json_object_get(body, "id"));
    char gen[ULID_LEN + 1];
    if (!id || !*id) {
        ulid_new(gen);
        id = gen;
    } else if (find_tab(doc, id)) {
        json_decref(doc);
        http_reply_error(req, ERR_ALREADY_EXISTS, "flow tab %s already exists", id);
        return;
    }
    if (put_tab(req, doc, id, body) == 0) tab_deploy(req, &cx, doc, "tab add", 200, id);
    json_decref(doc);
}

static void flows_delete_tab(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = http_param(req, "tab_id");
    char rev[32];
    json_t *doc = load_doc(req, &cx, rev);
    if (!doc) return;
    if (!find_tab(doc, id)) {
        json_decref(doc);
        http_reply_error(req, ERR_NOT_FOUND, "flow tab %s not found", id);
        return;
    }
    for (size_t i = 0; i < json_array_size(doc);) {
        json_t *n = json_array_get(doc, i);
        const char *nid = json_string_value(json_object_get(n, "id"));
        const char *z = json_string_value(json_object_get(n, "z"));
        if ((nid && strcmp(nid, id) == 0) || (z && strcmp(z, id) == 0))
            json_array_remove(doc, i);
        else
            i++;
    }
    char *text = jsonx_dump(doc);
    json_decref(doc);
    char nrev[32];
    json_t *problems = NULL;
    err_t e;
    if (flows_deploy(cx.conn, cx.project_id, text, NULL, actor_of(req, &cx), "tab delete", nrev,
                     &problems, &e) < 0)
        reply_problems(req, &e, problems);
    else {
        flows_runtime_sync(cx.project_id, 5000);
        http_reply_raw(req, 204, NULL, "", 0);
    }
    free(text);
}

/* ---- revisions ---- */

static void flows_list_revisions(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    err_t e;
    json_t *list = flows_revisions(cx.conn, cx.project_id, 100, &e);
    if (!list) {
        http_reply_err(req, &e);
        return;
    }
    http_reply_json(req, 200, json_pack("{s:o}", "revisions", list));
}

static void flows_restore(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *rev = http_param(req, "rev");
    err_t e;
    char *text = flows_revision_text(cx.conn, cx.project_id, rev, &e);
    if (!text) {
        http_reply_err(req, &e);
        return;
    }
    char note[64];
    snprintf(note, sizeof note, "restore %s", rev);
    deploy_and_reply(req, &cx, text, NULL, note, 200, NULL);
    free(text);
}

/* ---- inject button and debug ---- */

static void flows_inject_button(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *id = http_param(req, "node_id");
    json_t *msg = flows_msg_new();
    json_t *body = http_json(req), *user = json_object_get(body, "__user_inject_props__");
    if (json_is_array(user)) json_object_set(msg, "__user_inject_props__", user);
    if (flows_inject(cx.project_id, id, msg) < 0) {
        http_reply_error(req, ERR_NOT_FOUND, "node %s is not deployed", id);
        return;
    }
    http_reply_json(req, 200, json_object());
}

static void flows_debug_get(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *accept = http_header(req, "Accept");
    if (accept && strstr(accept, "text/event-stream")) {
        flows_debug_sse(req, cx.project_id, http_header(req, "Last-Event-ID"));
        return;
    }
    const char *after = http_query(req, "after");
    json_t *list = flows_debug_list(cx.project_id, after ? strtoll(after, NULL, 10) : 0, 0);
    http_reply_json(req, 200, json_pack("{s:o}", "messages", list));
}

static void flows_debug_stream(http_req_t *req)
{
    convo_ctx_t cx;
    if (api_convo_ctx(req, &cx) < 0) return;
    const char *last = http_header(req, "Last-Event-ID");
    if (!last) last = http_query(req, "last_event_id");
    flows_debug_sse(req, cx.project_id, last);
}

const http_route_t api_flows_routes[] = {
    {"GET", "/v1/projects/{project_id}/flows", flows_get_all, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/flows", flows_post_all, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/flows/revisions", flows_list_revisions, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/flows/revisions/{rev}:restore", flows_restore,
     HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/flows/{tab_id}", flows_get_tab, HTTP_AUTH},
    {"PUT", "/v1/projects/{project_id}/flows/{tab_id}", flows_put_tab, HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}/flows/{tab_id}", flows_delete_tab, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/flow", flows_post_tab, HTTP_AUTH | HTTP_JSON},
    {"POST", "/v1/projects/{project_id}/inject/{node_id}", flows_inject_button,
     HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/debug", flows_debug_get, HTTP_AUTH},
    {"GET", "/v1/projects/{project_id}/debug/stream", flows_debug_stream, HTTP_AUTH},
};
const size_t api_flows_nroutes = sizeof api_flows_routes / sizeof api_flows_routes[0];
