/* http_in.c: the `http in` and `http response` nodes (Node-RED 21-httpin.js) and the
 * machinery behind flows/httpd.h: a per-project table of the URL patterns deployed `http
 * in` nodes serve, and the table of deferred requests waiting for an `http response`.
 *
 * A request becomes msg {_msgid, req: {method, url, originalUrl, path, params, query,
 * headers, cookies, body, hostname}, res: {_res_id}, payload} (payload = query for GET,
 * body otherwise) injected at the node through flows_inject; the server thread returns at
 * once (http_defer). `http response` finds the request by msg.res._res_id and completes
 * it; copies of the msg share the id, so only the first answer counts. A sweeper thread
 * answers 504 to requests older than the timeout; flows_http_shutdown answers the rest. */
#include "flows/httpd.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "flows/mustache.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- routes ---- */

#define SEG_MAX 32

typedef struct route {
    struct route *next;
    const void *owner; /* the node instance that registered it */
    char *project, *node_id;
    char method[8]; /* upper case */
    int nseg, wildcard;
    char *seg[SEG_MAX]; /* ":name" params or literals */
} route_t;

static pthread_rwlock_t routes_mu = PTHREAD_RWLOCK_INITIALIZER;
static route_t *routes;

static int split_path(const char *path, char **seg, int max, int *wildcard)
{
    int n = 0;
    *wildcard = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 1 && *p == '*' && (!q || !q[strspn(q, "/")])) {
            *wildcard = 1;
            break;
        }
        if (n == max) return -1;
        seg[n] = xmalloc(len + 1);
        memcpy(seg[n], p, len);
        seg[n][len] = 0;
        n++;
        p += len;
    }
    return n;
}

static void route_free(route_t *r)
{
    for (int i = 0; i < r->nseg; i++)
        free(r->seg[i]);
    free(r->project);
    free(r->node_id);
    free(r);
}

static void route_add(const void *owner, const char *project, const char *node_id,
                      const char *method, const char *url)
{
    route_t *r = xcalloc(1, sizeof *r);
    r->owner = owner;
    r->project = xstrdup(project);
    r->node_id = xstrdup(node_id);
    for (size_t i = 0; method[i] && i < sizeof r->method - 1; i++)
        r->method[i] = (char)toupper((unsigned char)method[i]);
    int n = split_path(url, r->seg, SEG_MAX, &r->wildcard);
    r->nseg = n < 0 ? 0 : n;
    pthread_rwlock_wrlock(&routes_mu);
    r->next = routes;
    routes = r;
    pthread_rwlock_unlock(&routes_mu);
}

static void route_remove(const void *owner)
{
    pthread_rwlock_wrlock(&routes_mu);
    for (route_t **pp = &routes; *pp;) {
        if ((*pp)->owner == owner) {
            route_t *r = *pp;
            *pp = r->next;
            route_free(r);
        } else {
            pp = &(*pp)->next;
        }
    }
    pthread_rwlock_unlock(&routes_mu);
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* decodeURIComponent (plus_space: form bodies). New string. */
static char *url_decode(const char *s, size_t n, int plus_space)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+' && plus_space)
            *o++ = ' ';
        else if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            *o++ = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else
            *o++ = s[i];
    }
    *o = 0;
    return out;
}

/* Match path segments against r: params (decoded) go into params (may be NULL). */
static int route_match(const route_t *r, char **seg, int nseg, json_t *params)
{
    if (r->wildcard ? nseg < r->nseg : nseg != r->nseg) return 0;
    for (int i = 0; i < r->nseg; i++) {
        if (r->seg[i][0] == ':') continue;
        if (strcasecmp(r->seg[i], seg[i]) != 0) return 0;
    }
    if (!params) return 1;
    for (int i = 0; i < r->nseg; i++) {
        if (r->seg[i][0] != ':') continue;
        char *v = url_decode(seg[i], strlen(seg[i]), 0);
        json_t *j = json_string(v);
        json_object_set_new(params, r->seg[i] + 1, j ? j : json_string(seg[i]));
        free(v);
    }
    if (r->wildcard) {
        buf_t b;
        buf_init(&b);
        for (int i = r->nseg; i < nseg; i++) {
            if (i > r->nseg) buf_puts(&b, "/");
            buf_puts(&b, seg[i]);
        }
        json_object_set_new(params, "0", json_string(b.data ? b.data : ""));
        buf_free(&b);
    }
    return 1;
}

/* ---- pending requests ---- */

#define PEND_BUCKETS 256

typedef struct pend {
    struct pend *next;
    uint64_t id;
    http_req_t *req;
    int64_t deadline;
} pend_t;

static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pend_cv = PTHREAD_COND_INITIALIZER;
static pend_t *pend[PEND_BUCKETS];
static uint64_t pend_next = 1;
static int pend_count, closing, sweeper_running;
static pthread_t sweeper;
static atomic_llong timeout_ms = -1;

void flows_http_set_timeout_ms(int64_t ms)
{
    atomic_store(&timeout_ms, ms > 0 ? ms : 120000);
}

static int64_t get_timeout(void)
{
    int64_t t = atomic_load(&timeout_ms);
    if (t < 0) {
        const char *env = getenv("PARLEY_FLOWS_HTTP_TIMEOUT");
        double s = env ? atof(env) : 0;
        t = s > 0 ? (int64_t)(s * 1000) : 120000;
        atomic_store(&timeout_ms, t);
    }
    return t;
}

/* 504 in the error model (err_code_t has no gateway timeout). */
static void reply_timeout(http_req_t *r)
{
    char m[160];
    snprintf(m, sizeof m,
             "the flow did not answer within %lld ms (no http response node was reached)",
             (long long)get_timeout());
    json_t *b = json_pack("{s:{s:i,s:s,s:s,s:[]}}", "error", "code", 504, "message", m, "status",
                          "DEADLINE_EXCEEDED", "details");
    char *t = json_dumps(b, JSON_COMPACT);
    http_reply_raw(r, 504, "application/json", t, strlen(t));
    free(t);
    json_decref(b);
}

static void *sweep_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pend_mu);
    while (!closing) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&pend_cv, &pend_mu, &ts);
        if (closing) break;
        int64_t now = clock_now_ms();
        pend_t *expired = NULL;
        for (int b = 0; b < PEND_BUCKETS; b++)
            for (pend_t **pp = &pend[b]; *pp;) {
                if ((*pp)->deadline <= now) {
                    pend_t *p = *pp;
                    *pp = p->next;
                    p->next = expired;
                    expired = p;
                    pend_count--;
                } else {
                    pp = &(*pp)->next;
                }
            }
        pthread_mutex_unlock(&pend_mu);
        while (expired) {
            pend_t *p = expired;
            expired = p->next;
            reply_timeout(p->req);
            http_complete(p->req);
            free(p);
        }
        pthread_mutex_lock(&pend_mu);
    }
    pthread_mutex_unlock(&pend_mu);
    return NULL;
}

/* Register r as waiting; returns its id, or 0 when closing. */
static uint64_t pend_add(http_req_t *r)
{
    pend_t *p = xcalloc(1, sizeof *p);
    p->req = r;
    p->deadline = clock_now_ms() + get_timeout();
    pthread_mutex_lock(&pend_mu);
    if (closing) {
        pthread_mutex_unlock(&pend_mu);
        free(p);
        return 0;
    }
    if (!sweeper_running) {
        if (pthread_create(&sweeper, NULL, sweep_main, NULL) == 0) sweeper_running = 1;
    }
    p->id = pend_next++;
    p->next = pend[p->id % PEND_BUCKETS];
    pend[p->id % PEND_BUCKETS] = p;
    pend_count++;
    pthread_mutex_unlock(&pend_mu);
    return p->id;
}

/* Take the request with this id out of the table (NULL if answered/expired already). */
static http_req_t *pend_take(uint64_t id)
{
    http_req_t *r = NULL;
    pthread_mutex_lock(&pend_mu);
    for (pend_t **pp = &pend[id % PEND_BUCKETS]; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            pend_t *p = *pp;
            *pp = p->next;
            r = p->req;
            free(p);
            pend_count--;
            break;
        }
    if (pend_count == 0 && closing) pthread_cond_broadcast(&pend_cv);
    pthread_mutex_unlock(&pend_mu);
    return r;
}

int flows_http_pending(void)
{
    pthread_mutex_lock(&pend_mu);
    int n = pend_count;
    pthread_mutex_unlock(&pend_mu);
    return n;
}

void flows_http_shutdown(int grace_s)
{
    pthread_mutex_lock(&pend_mu);
    closing = 1;
    pthread_cond_broadcast(&pend_cv);
    int had_sweeper = sweeper_running;
    sweeper_running = 0;
    pthread_mutex_unlock(&pend_mu);
    if (had_sweeper) pthread_join(sweeper, NULL);
    /* let flows finish what they are answering */
    int64_t until = clock_now_ms() + (int64_t)grace_s * 1000;
    pthread_mutex_lock(&pend_mu);
    while (pend_count > 0 && clock_now_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&pend_cv, &pend_mu, &ts);
    }
    pend_t *rest = NULL;
    for (int b = 0; b < PEND_BUCKETS; b++) {
        while (pend[b]) {
            pend_t *p = pend[b];
            pend[b] = p->next;
            p->next = rest;
            rest = p;
        }
    }
    pend_count = 0;
    pthread_mutex_unlock(&pend_mu);
    while (rest) {
        pend_t *p = rest;
        rest = p->next;
        http_reply_error(p->req, ERR_UNAVAILABLE, "server shutting down");
        http_complete(p->req);
        free(p);
    }
}

/* ---- building msg.req ---- */

typedef struct {
    json_t *obj;
    int lower;
} kv_ctx_t;

static void put_kv(void *ud, const char *name, const char *value)
{
    kv_ctx_t *k = ud;
    char key[256];
    snprintf(key, sizeof key, "%s", name);
    if (k->lower)
        for (char *c = key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    json_t *v = json_string(value);
    if (!v) return; /* not UTF-8: dropped */
    json_t *old = json_object_get(k->obj, key);
    if (!old) {
        json_object_set_new(k->obj, key, v);
    } else if (json_is_array(old)) {
        json_array_append_new(old, v);
    } else { /* repeated: an array, as Express's query parser makes */
        json_t *a = json_pack("[O,o]", old, v);
        json_object_set_new(k->obj, key, a);
    }
}

static void parse_cookies(const char *h, json_t *out)
{
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        const char *eq = memchr(h, '=', len);
        if (eq) {
            size_t nl = (size_t)(eq - h);
            while (nl && h[nl - 1] == ' ')
                nl--;
            const char *v = eq + 1;
            size_t vl = len - (size_t)(v - h);
            while (vl && v[vl - 1] == ' ')
                vl--;
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') v++, vl -= 2;
            char *name = xmalloc(nl + 1);
            memcpy(name, h, nl);
            name[nl] = 0;
            if (!json_object_get(out, name)) {
                char *dv = url_decode(v, vl, 0);
                json_t *j = json_string(dv);
                if (j) json_object_set_new(out, name, j);
                free(dv);
            }
            free(name);
        }
        h = end ? end + 1 : NULL;
    }
}

static int media_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return ct && strncasecmp(ct, type, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static json_t *bytes_json(const char *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* The body as Node-RED's parsers make it: JSON, urlencoded form, text, or bytes. NULL with
 * e on a JSON syntax error. */
static json_t *parse_body(http_req_t *r, err_t *e)
{
    size_t len;
    const char *body = http_body(r, &len);
    const char *ct = http_header(r, "Content-Type");
    while (ct && *ct == ' ')
        ct++;
    if (media_is(ct, "application/json") || (ct && strstr(ct, "+json"))) {
        if (len == 0) return json_object();
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j)
            err_set(e, ERR_INVALID_ARGUMENT, "invalid JSON body: %s (line %d, column %d)", je.text,
                    je.line, je.column);
        return j;
    }
    if (media_is(ct, "application/x-www-form-urlencoded")) {
        json_t *o = json_object();
        kv_ctx_t k = {o, 0};
        const char *p = body, *end = body + len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            if (!amp) amp = end;
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            if (amp > p) {
                char *name = url_decode(p, (size_t)((eq ? eq : amp) - p), 1);
                char *val = eq ? url_decode(eq + 1, (size_t)(amp - eq - 1), 1) : xstrdup("");
                put_kv(&k, name, val);
                free(name);
                free(val);
            }
            p = amp + 1;
        }
        return o;
    }
    int text = 1, check_utf = 0;
    if (ct && *ct) {
        if (strncasecmp(ct, "text/", 5) == 0 || strstr(ct, "xml"))
            text = 1;
        else if (strncasecmp(ct, "application/", 12) != 0)
            text = 0;
        else if (media_is(ct, "application/octet-stream") || media_is(ct, "application/cbor") ||
                 media_is(ct, "application/x-protobuf"))
            text = 0;
        else
            check_utf = 1, text = 0;
    }
    if (text || check_utf) {
        json_t *s = json_stringn(body, len);
        if (s) return s;
    }
    return bytes_json(body, len);
}

static json_t *jstr(const char *s, const char *def)
{
    json_t *j = json_string(s);
    return j ? j : json_string(def);
}

void flows_http_handle(http_req_t *r, const char *project_id, const char *rest)
{
    const char *method = http_method(r);
    char *seg[SEG_MAX + 1];
    int wild;
    /* the path as sent (still percent-encoded, as Express's req.path), after /flows/{p} */
    char path[2048];
    const char *raw0 = http_raw_uri(r);
    const char *after = raw0;
    for (int slashes = 0; *after && slashes < 3; after++)
        if (*after == '/' && ++slashes == 3) break;
    if (*after == '/') {
        size_t pl = strcspn(after, "?#");
        snprintf(path, sizeof path, "%.*s", (int)(pl < sizeof path ? pl : sizeof path - 1), after);
    } else {
        snprintf(path, sizeof path, "/%s", rest ? rest : "");
    }
    int nseg = split_path(path, seg, SEG_MAX, &wild);
    if (nseg < 0) {
        http_reply_error(r, ERR_NOT_FOUND, "no flow serves %s %s", method, path);
        return;
    }
    if (wild) { /* a literal "*" segment in the request: treat as a segment */
        seg[nseg++] = xstrdup("*");
    }
    char node_id[256] = "";
    json_t *params = json_object();
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    pthread_rwlock_rdlock(&routes_mu);
    for (route_t *rt = routes; rt; rt = rt->next) {
        if (strcmp(rt->project, project_id) || strcmp(rt->method, m)) continue;
        if (route_match(rt, seg, nseg, params)) {
            snprintf(node_id, sizeof node_id, "%s", rt->node_id);
            break;
        }
    }
    pthread_rwlock_unlock(&routes_mu);
    for (int i = 0; i < nseg; i++)
        free(seg[i]);
    if (!node_id[0]) {
        json_decref(params);
        http_reply_error(r, ERR_NOT_FOUND, "no flow serves %s %s", method, path);
        return;
    }
    err_t e = {0};
    json_t *body = NULL;
    int with_body = strcmp(m, "GET") != 0;
    if (with_body && !(body = parse_body(r, &e))) {
        json_decref(params);
        http_reply_err(r, &e);
        return;
    }
    json_t *query = json_object(), *headers = json_object(), *cookies = json_object();
    kv_ctx_t kq = {query, 0}, kh = {headers, 1};
    http_query_each(r, put_kv, &kq);
    http_header_each(r, put_kv, &kh);
    parse_cookies(http_header(r, "Cookie"), cookies);
    const char *raw = http_raw_uri(r);
    /* url relative to /flows/{project_id} (Node-RED's req.url under httpNodeRoot) */
    const char *q = strchr(raw, '?');
    buf_t url;
    buf_init(&url);
    buf_puts(&url, path);
    if (q) buf_puts(&url, q);
    json_t *req = json_object();
    json_object_set_new(req, "method", json_string(method));
    json_object_set_new(req, "url", jstr(url.data, "/"));
    json_object_set_new(req, "originalUrl", jstr(raw, "/"));
    json_object_set_new(req, "path", jstr(path, "/"));
    buf_free(&url);
    const char *host = http_header(r, "Host");
    if (host) {
        char hn[256];
        snprintf(hn, sizeof hn, "%s", host);
        char *colon = hn[0] == '[' ? strchr(hn, ']') : strchr(hn, ':');
        if (colon && hn[0] != '[')
            *colon = 0;
        else if (colon)
            colon[1] = 0;
        json_t *h = json_string(hn);
        if (h) json_object_set_new(req, "hostname", h);
    }
    json_object_set_new(req, "params", params);
    json_object_set_new(req, "query", query);
    json_object_set_new(req, "headers", headers);
    json_object_set_new(req, "cookies", cookies);
    json_t *msg = json_object();
    if (body) {
        json_object_set(req, "body", body);
        json_object_set_new(msg, "payload", body);
    } else {
        json_object_set(msg, "payload", query);
    }
    json_object_set_new(msg, "req", req);
    uint64_t id = pend_add(r);
    if (!id) {
        json_decref(msg);
        http_reply_error(r, ERR_UNAVAILABLE, "server shutting down");
        return;
    }
    char ids[24];
    snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
    json_object_set_new(msg, "res", json_pack("{s:s}", "_res_id", ids));
    http_defer(r);
    if (flows_inject(project_id, node_id, msg) < 0) {
        http_req_t *back = pend_take(id);
        if (back) {
            http_reply_error(back, ERR_NOT_FOUND, "no flow serves %s %s", method, path);
            http_complete(back);
        }
    }
}

/* ---- http in ---- */

static const char *const methods[] = {"get", "post", "put", "delete", "patch", NULL};

static void httpin_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *url = io_str(cfg, "url", "");
    if (!*url)
        flows_problem(p, id, "url", "missing path: an http in node needs a url");
    else {
        char *seg[SEG_MAX];
        int wild;
        int n = split_path(url, seg, SEG_MAX, &wild);
        if (n < 0) flows_problem(p, id, "url", "url has more than %d segments", SEG_MAX);
        for (int i = 0; i < n; i++)
            free(seg[i]);
        if (strchr(url, '?') || strchr(url, '(') || strchr(url, '#'))
            flows_problem(p, id, "url",
                          "url \"%s\": only literal segments, :params and a trailing * are "
                          "supported",
                          url);
    }
    const char *m = io_str(cfg, "method", "get");
    int ok = 0;
    for (int i = 0; methods[i]; i++)
        ok |= strcmp(m, methods[i]) == 0;
    if (!ok)
        flows_problem(p, id, "method", "method must be get, post, put, delete or patch, not \"%s\"",
                      m);
}

static int httpin_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *cfg = flows_node_config(n);
    route_add(n, flows_node_project(n), flows_node_id(n), io_str(cfg, "method", "get"),
              io_str(cfg, "url", "/"));
    return 0;
}

static void httpin_stop(flows_node_t *n)
{
    route_remove(n);
}

static void httpin_input(flows_node_t *n, json_t *msg)
{
    flows_send(n, 0, msg); /* the injected request message starts here */
}

const flows_node_type_t flows_type_http_in = {
    .type = "http in",
    .validate = httpin_validate,
    .start = httpin_start,
    .input = httpin_input,
    .stop = httpin_stop,
};

/* ---- http response ---- */

static void httpout_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    int ok;
    double sc = io_num(cfg, "statusCode", 0, &ok);
    if (!ok || (sc != 0 && (sc < 100 || sc > 599)))
        flows_problem(p, id, "statusCode", "statusCode must be an HTTP status (100..599)");
    json_t *h = json_object_get(cfg, "headers");
    if (h && !json_is_object(h) && !(json_is_string(h) && !*json_string_value(h)))
        flows_problem(p, id, "headers", "headers must be an object of name: value");
}

static int has_header(json_t *hdrs, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(hdrs, k, v) if (strcasecmp(k, name) == 0) return 1;
    return 0;
}

static void encode_uri_component(buf_t *b, const char *s)
{
    static const char keep[] = "-_.!~*'()";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (isalnum(*c) || strchr(keep, *c))
            buf_append(b, c, 1);
        else
            buf_printf(b, "%%%02X", *c);
    }
}

static void http_date(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void add_cookie(http_req_t *r, const char *name, json_t *c)
{
    buf_t b;
    buf_init(&b);
    char date[64];
    json_t *val = json_is_object(c) ? json_object_get(c, "value") : c;
    int clear = !c || json_is_null(c) || (json_is_object(c) && json_is_null(val));
    buf_puts(&b, name);
    buf_puts(&b, "=");
    if (!clear && val) {
        if (json_is_string(val))
            encode_uri_component(&b, json_string_value(val));
        else if (json_is_object(val) || json_is_array(val)) {
            char *j = json_dumps(val, JSON_COMPACT);
            buf_t tmp;
            buf_init(&tmp);
            buf_puts(&tmp, "j:");
            buf_puts(&tmp, j);
            encode_uri_component(&b, tmp.data);
            buf_free(&tmp);
            free(j);
        } else {
            flows_mustache_str(val, &b);
        }
    }
    json_t *opt = json_is_object(c) ? c : NULL;
    if (!clear && opt && json_is_number(json_object_get(opt, "maxAge"))) {
        double ma = json_number_value(json_object_get(opt, "maxAge"));
        buf_printf(&b, "; Max-Age=%lld", (long long)(ma / 1000));
    }
    const char *domain = opt ? io_str(opt, "domain", NULL) : NULL;
    if (domain) buf_printf(&b, "; Domain=%s", domain);
    const char *path = opt ? io_str(opt, "path", "/") : "/";
    buf_printf(&b, "; Path=%s", path);
    if (clear) {
        buf_puts(&b, "; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    } else if (opt && json_is_number(json_object_get(opt, "maxAge"))) {
        http_date(clock_now_ms() + (int64_t)json_number_value(json_object_get(opt, "maxAge")), date,
                  sizeof date);
        buf_printf(&b, "; Expires=%s", date);
    } else if (opt && json_is_string(json_object_get(opt, "expires"))) {
        buf_printf(&b, "; Expires=%s", json_string_value(json_object_get(opt, "expires")));
    }
    if (opt && io_bool(opt, "httpOnly", 0)) buf_puts(&b, "; HttpOnly");
    if (opt && io_bool(opt, "secure", 0)) buf_puts(&b, "; Secure");
    const char *ss = opt ? io_str(opt, "sameSite", NULL) : NULL;
    if (ss) {
        const char *v = !strcasecmp(ss, "strict") ? "Strict"
                        : !strcasecmp(ss, "none") ? "None"
                                                  : "Lax";
        buf_printf(&b, "; SameSite=%s", v);
    } else if (opt && json_is_true(json_object_get(opt, "sameSite"))) {
        buf_puts(&b, "; SameSite=Strict");
    }
    http_add_header(r, "Set-Cookie", b.data);
    buf_free(&b);
}

static void header_value(json_t *v, buf_t *out)
{
    if (json_is_string(v))
        buf_puts(out, json_string_value(v));
    else if (json_is_number(v) || json_is_boolean(v))
        flows_mustache_str(v, out);
    else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (i) buf_puts(out, ", ");
            header_value(x, out);
        }
    }
}

static void httpout_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    json_t *res = json_object_get(msg, "res");
    json_t *rid = json_is_object(res) ? json_object_get(res, "_res_id") : NULL;
    if (!rid) {
        flows_warn(n, "No response object");
        json_decref(msg);
        return;
    }
    uint64_t id = json_is_string(rid) ? strtoull(json_string_value(rid), NULL, 10)
                                      : (uint64_t)json_integer_value(rid);
    http_req_t *r = pend_take(id);
    if (!r) {
        flows_warn(n, "the HTTP request of this message was already answered or timed out");
        json_decref(msg);
        return;
    }
    /* headers: the node's, then msg.headers for names the node does not set */
    json_t *hdrs = json_object();
    json_t *nh = json_object_get(cfg, "headers");
    if (json_is_object(nh)) json_object_update(hdrs, nh);
    json_t *mh = json_object_get(msg, "headers");
    if (json_is_object(mh)) {
        const char *k;
        json_t *v;
        json_object_foreach(mh, k, v) if (!has_header(hdrs, k) &&
                                          strcmp(k, "x-node-red-request-node") != 0)
            json_object_set(hdrs, k, v);
    }
    const char *ctype = NULL;
    buf_t ctbuf;
    buf_init(&ctbuf);
    const char *k;
    json_t *v;
    json_object_foreach(hdrs, k, v)
    {
        buf_t hv;
        buf_init(&hv);
        header_value(v, &hv);
        if (strcasecmp(k, "content-type") == 0) {
            buf_puts(&ctbuf, hv.data ? hv.data : "");
            ctype = ctbuf.data;
        } else if (strcasecmp(k, "content-length") != 0) {
            http_add_header(r, k, hv.data ? hv.data : "");
        }
        buf_free(&hv);
    }
    json_t *cookies = json_object_get(msg, "cookies");
    if (json_is_object(cookies)) {
        json_object_foreach(cookies, k, v) add_cookie(r, k, v);
    }
    int ok;
    int status = (int)io_num(cfg, "statusCode", 0, &ok);
    if (status == 0) {
        json_t *sc = json_object_get(msg, "statusCode");
        if (json_is_number(sc))
            status = (int)json_number_value(sc);
        else if (json_is_string(sc))
            status = atoi(json_string_value(sc));
    }
    if (status < 100 || status > 599) status = 200;
    json_t *payload = json_object_get(msg, "payload");
    buf_t body;
    buf_init(&body);
    if (json_is_object(payload) || json_is_array(payload) || json_is_boolean(payload)) {
        char *j = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_puts(&body, j);
        free(j);
        if (!ctype) ctype = "application/json; charset=utf-8";
    } else {
        if (json_is_string(payload))
            buf_append(&body, json_string_value(payload), json_string_length(payload));
        else if (json_is_number(payload)) {
            flows_mustache_str(payload, &body);
        }
        if (!ctype) ctype = "text/html; charset=utf-8";
    }
    http_reply_raw(r, status, ctype, body.data ? body.data : "", body.len);
    http_complete(r);
    buf_free(&body);
    buf_free(&ctbuf);
    json_decref(hdrs);
    json_decref(msg);
}

const flows_node_type_t flows_type_http_response = {
    .type = "http response",
    .validate = httpout_validate,
    .input = httpout_input,
};
