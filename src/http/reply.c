/* reply.c: request accessors, reply builders and the error model. */
#include "http/http_internal.h"
#include "base/jsonx.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *http_ctx(http_req_t *r)
{
    return r->ctx;
}

arena_t *http_arena(http_req_t *r)
{
    return r->arena;
}

const char *http_method(http_req_t *r)
{
    return r->method;
}

const char *http_path(http_req_t *r)
{
    return r->path;
}

const char *http_request_id(http_req_t *r)
{
    return r->request_id;
}

const char *http_param(http_req_t *r, const char *name)
{
    for (int i = 0; i < r->params.n; i++)
        if (strcmp(r->params.name[i], name) == 0) return r->params.value[i];
    return NULL;
}

static char **query_pairs(http_req_t *r)
{
    if (!r->query) {
        const char *q = r->raw_uri ? strchr(r->raw_uri, '?') : NULL;
        q = q ? q + 1 : "";
        size_t n = strcspn(q, "#");
        r->query = http_parse_pairs(r->arena, q, n, 0);
    }
    return r->query;
}

const char *http_query(http_req_t *r, const char *name)
{
    for (char **f = query_pairs(r); *f; f += 2)
        if (strcmp(f[0], name) == 0) return f[1];
    return NULL;
}

int http_query_all(http_req_t *r, const char *name, const char **out, int max)
{
    int n = 0;
    for (char **f = query_pairs(r); *f && n < max; f += 2)
        if (strcmp(f[0], name) == 0) out[n++] = f[1];
    return n;
}

const char *http_header(http_req_t *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *http_body(http_req_t *r, size_t *len)
{
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}

json_t *http_json(http_req_t *r)
{
    return r->json;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static char *pair_decode(arena_t *a, const char *s, size_t n, int plus_is_space)
{
    char *out = arena_alloc(a, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+' && plus_is_space) {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

char **http_parse_pairs(arena_t *a, const char *s, size_t n, int plus_is_space)
{
    size_t pairs = 1;
    for (size_t i = 0; i < n; i++)
        pairs += s[i] == '&';
    char **out = arena_alloc(a, (pairs * 2 + 1) * sizeof(char *));
    size_t k = 0;
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        if (amp > p) {
            out[k++] = pair_decode(a, p, (size_t)((eq ? eq : amp) - p), plus_is_space);
            out[k++] = eq ? pair_decode(a, eq + 1, (size_t)(amp - eq - 1), plus_is_space) : "";
        }
        p = amp + 1;
    }
    out[k] = NULL;
    return out;
}

const char *http_form(http_req_t *r, const char *name)
{
    if (!r->form) r->form = http_parse_pairs(r->arena, r->body ? r->body : "", r->body_len, 1);
    for (char **f = r->form; *f; f += 2)
        if (strcmp(f[0], name) == 0) return f[1];
    return NULL;
}

void http_set_principal(http_req_t *r, const char *project_id, const char *key_id)
{
    snprintf(r->project_id, sizeof r->project_id, "%s", project_id ? project_id : "");
    snprintf(r->key_id, sizeof r->key_id, "%s", key_id ? key_id : "");
}

const char *http_principal_project(http_req_t *r)
{
    return r->project_id[0] ? r->project_id : NULL;
}

const char *http_principal_key(http_req_t *r)
{
    return r->key_id[0] ? r->key_id : NULL;
}

int http_replied(http_req_t *r)
{
    return r->replied;
}

static void reply_set(http_req_t *r, int status, const char *ctype, char *body, size_t len)
{
    if (r->replied) { /* a bug in a handler: keep the first reply */
        free(body);
        return;
    }
    r->replied = 1;
    r->status = status;
    r->resp_ctype = ctype ? arena_strdup(r->arena, ctype) : NULL;
    r->resp_body = body;
    r->resp_len = len;
}

void http_reply_json(http_req_t *r, int status, json_t *body)
{
    char *text = body ? jsonx_dump(body) : strdup("{}");
    json_decref(body);
    if (!text) {
        http_reply_error(r, ERR_INTERNAL, "cannot serialise the response");
        return;
    }
    reply_set(r, status, "application/json", text, strlen(text));
}

void http_reply_raw(http_req_t *r, int status, const char *ctype, const void *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, body, len);
    copy[len] = '\0';
    reply_set(r, status, ctype, copy, len);
}

json_t *http_error_body(err_code_t code, const char *message)
{
    return json_pack("{s:{s:i, s:s, s:s, s:[]}}", "error", "code", err_http_status(code), "message",
                     message, "status", err_status_name(code), "details");
}

void http_reply_err(http_req_t *r, const err_t *e)
{
    http_reply_json(r, err_http_status(e->code), http_error_body(e->code, e->message));
}

void http_reply_error(http_req_t *r, err_code_t code, const char *fmt, ...)
{
    err_t e;
    va_list ap;
    va_start(ap, fmt);
    err_setv(&e, code, fmt, ap);
    va_end(ap);
    http_reply_err(r, &e);
}

void http_add_header(http_req_t *r, const char *name, const char *value)
{
    http_header_kv_t *h = arena_alloc(r->arena, sizeof *h);
    h->name = arena_strdup(r->arena, name);
    h->value = arena_strdup(r->arena, value);
    h->next = r->headers;
    r->headers = h;
}
