/* router.c: compiles route patterns into segment lists and matches request paths against
 * them. A linear scan: Parley has ~100 routes and a match costs well under a microsecond;
 * a trie would be cleverness before measurement. */
#include "http/http.h"
#include "base/buf.h"

#include <stdio.h>
#include <string.h>

typedef enum { SEG_LIT, SEG_PARAM, SEG_REST } seg_kind_t;

typedef struct {
    seg_kind_t kind;
    char *text;   /* literal, or param name */
    char *suffix; /* for SEG_PARAM: ":verb" or NULL */
} seg_t;

typedef struct {
    seg_t seg[HTTP_MAX_SEGMENTS];
    int nseg;
} compiled_t;

struct http_router {
    const http_route_t *routes;
    compiled_t *compiled;
    size_t n;
};

static void compiled_free(compiled_t *c)
{
    for (int i = 0; i < c->nseg; i++) {
        free(c->seg[i].text);
        free(c->seg[i].suffix);
    }
}

static int compile(const char *pattern, compiled_t *c, err_t *e)
{
    memset(c, 0, sizeof *c);
    if (pattern[0] != '/') return err_set(e, ERR_INTERNAL, "route %s: must start with /", pattern);
    const char *p = pattern + 1;
    int nparams = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || c->nseg == HTTP_MAX_SEGMENTS)
            return err_set(e, ERR_INTERNAL, "route %s: empty segment or too many", pattern);
        seg_t *s = &c->seg[c->nseg++];
        if (p[0] == '{' && ++nparams > HTTP_MAX_PARAMS)
            return err_set(e, ERR_INTERNAL, "route %s: more than %d parameters", pattern,
                           HTTP_MAX_PARAMS);
        if (p[0] == '{') {
            const char *close = memchr(p, '}', len);
            if (!close || close == p + 1)
                return err_set(e, ERR_INTERNAL, "route %s: bad {param}", pattern);
            size_t nlen = (size_t)(close - p - 1);
            if (p[nlen] == '*') { /* {name*} */
                if (end) return err_set(e, ERR_INTERNAL, "route %s: {name*} must be last", pattern);
                s->kind = SEG_REST;
                nlen--;
            } else {
                s->kind = SEG_PARAM;
            }
            s->text = strndup(p + 1, nlen);
            size_t rest = len - (size_t)(close + 1 - p);
            if (rest) {
                if (close[1] != ':' || s->kind == SEG_REST)
                    return err_set(e, ERR_INTERNAL, "route %s: only :verb may follow {param}",
                                   pattern);
                s->suffix = strndup(close + 1, rest);
            }
        } else {
            s->kind = SEG_LIT;
            s->text = strndup(p, len);
        }
        p += len;
        if (*p == '/') p++;
    }
    return 0;
}

http_router_t *http_router_new(const http_route_t *routes, size_t n, err_t *e)
{
    http_router_t *r = xcalloc(1, sizeof *r);
    r->routes = routes;
    r->n = n;
    r->compiled = xcalloc(n, sizeof *r->compiled);
    for (size_t i = 0; i < n; i++)
        if (compile(routes[i].pattern, &r->compiled[i], e) < 0) {
            r->n = i + 1;
            http_router_free(r);
            return NULL;
        }
    return r;
}

void http_router_free(http_router_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        compiled_free(&r->compiled[i]);
    free(r->compiled);
    free(r);
}

typedef struct {
    const char *p;
    size_t len;
} span_t;

static int seg_match(const seg_t *s, span_t in, http_params_t *params, arena_t *a)
{
    if (s->kind == SEG_LIT) return in.len == strlen(s->text) && memcmp(in.p, s->text, in.len) == 0;
    size_t slen = s->suffix ? strlen(s->suffix) : 0;
    if (in.len <= slen) return 0;
    size_t vlen = in.len - slen;
    if (slen && memcmp(in.p + vlen, s->suffix, slen) != 0) return 0;
    if (memchr(in.p, ':', vlen)) return 0; /* a bare {param} never swallows a custom verb */
    if (params && params->n < HTTP_MAX_PARAMS) {
        params->name[params->n] = s->text;
        params->value[params->n++] = arena_strndup(a, in.p, vlen);
    }
    return 1;
}

static int route_match(const compiled_t *c, const span_t *segs, int nsegs, const char *path_rest[],
                       http_params_t *params, arena_t *a)
{
    int i;
    for (i = 0; i < c->nseg; i++) {
        if (c->seg[i].kind == SEG_REST) {
            if (i >= nsegs) return 0;
            if (params && params->n < HTTP_MAX_PARAMS) {
                params->name[params->n] = c->seg[i].text;
                params->value[params->n++] = arena_strdup(a, path_rest[i]);
            }
            return 1;
        }
        if (i >= nsegs || !seg_match(&c->seg[i], segs[i], params, a)) return 0;
    }
    return i == nsegs;
}

http_match_t http_router_match(const http_router_t *r, const char *method, const char *path,
                               arena_t *a, int *index, http_params_t *params, char *allow,
                               size_t allow_cap)
{
    span_t segs[HTTP_MAX_SEGMENTS];
    const char *rest[HTTP_MAX_SEGMENTS];
    int nsegs = 0;
    if (allow_cap) allow[0] = '\0';
    if (path[0] != '/') return HTTP_MATCH_BAD_PATH;
    for (const char *p = path + 1;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > HTTP_MAX_SEGMENT_LEN) return HTTP_MATCH_BAD_PATH;
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return HTTP_MATCH_BAD_PATH;
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)p[k] < 0x20 || p[k] == 0x7f) return HTTP_MATCH_BAD_PATH;
        if (len == 0 && !end) break; /* "/" itself, or one trailing slash */
        if (nsegs == HTTP_MAX_SEGMENTS) return HTTP_MATCH_NOT_FOUND;
        rest[nsegs] = p;
        segs[nsegs++] = (span_t){p, len};
        if (!end) break;
        p = end + 1;
    }
    int found_path = 0;
    size_t allow_len = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (!route_match(&r->compiled[i], segs, nsegs, rest, NULL, NULL)) continue;
        const char *m = r->routes[i].method;
        if (strcmp(m, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(m, "GET") == 0)) {
            if (params) {
                params->n = 0;
                route_match(&r->compiled[i], segs, nsegs, rest, params, a);
            }
            *index = (int)i;
            return HTTP_MATCH_OK;
        }
        found_path = 1;
        if (allow_cap && !strstr(allow, m) && allow_len + strlen(m) + 3 < allow_cap)
            allow_len += (size_t)snprintf(allow + allow_len, allow_cap - allow_len, "%s%s",
                                          allow_len ? ", " : "", m);
    }
    return found_path ? HTTP_MATCH_METHOD : HTTP_MATCH_NOT_FOUND;
}
