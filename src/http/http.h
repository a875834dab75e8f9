/* http.h: Parley's HTTP layer over libmicrohttpd. A route table maps method + path
 * pattern to a handler; the server reads and caps bodies, parses JSON, runs the auth hook,
 * calls the handler and writes its reply, logs one line per request and keeps metrics.
 *
 * Patterns: literal segments, `{name}` (one segment without ':'), `{name}:verb` (a
 * Google-style custom verb on a parameter), `name:verb` literals, and a trailing `{name*}`
 * that takes the rest of the path. Everything a handler gets from a request (params,
 * query, headers, parsed body) lives until the reply is sent; handlers never free it. */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct http_req http_req_t;
typedef void (*http_handler_fn)(http_req_t *req);

enum {
    HTTP_AUTH = 1 << 0, /* run the server's authenticate hook first */
    HTTP_JSON = 1 << 1, /* a non-empty body must be application/json; parsed before the call */
    HTTP_FORM = 1 << 2, /* a non-empty body must be application/x-www-form-urlencoded */
    HTTP_RAW = 1 << 3,  /* any body, any content type (provider webhooks) */
};

typedef struct {
    const char *method;
    const char *pattern;
    http_handler_fn fn;
    unsigned flags;
} http_route_t;

/* ---- the router (pure; used by the server and the unit tests) ---- */

#define HTTP_MAX_PARAMS      8
#define HTTP_MAX_SEGMENTS    32
#define HTTP_MAX_SEGMENT_LEN 256

typedef struct {
    int n;
    const char *name[HTTP_MAX_PARAMS];
    char *value[HTTP_MAX_PARAMS];
} http_params_t;

typedef struct http_router http_router_t;

typedef enum {
    HTTP_MATCH_OK = 0,
    HTTP_MATCH_NOT_FOUND, /* 404 */
    HTTP_MATCH_METHOD,    /* 405; allow holds the methods that would match */
    HTTP_MATCH_BAD_PATH,  /* 400: dot segments, overlong segment, control characters */
} http_match_t;

/* Validates every pattern; NULL with e filled for a malformed table. */
http_router_t *http_router_new(const http_route_t *routes, size_t n, err_t *e);
void http_router_free(http_router_t *r);
/* Param values are copied into arena a. *index is the route's position in the table. */
http_match_t http_router_match(const http_router_t *r, const char *method, const char *path,
                               arena_t *a, int *index, http_params_t *params, char *allow,
                               size_t allow_cap);

/* ---- the server ---- */

typedef struct http_server http_server_t;

typedef struct {
    const char *listen; /* "ADDR:PORT", "[V6]:PORT"; port 0 picks a free one */
    int threads;        /* 0 = one per core */
    size_t max_body;
    const char *tls_cert_pem, *tls_key_pem; /* both set: HTTPS */
    const http_route_t *routes;
    size_t nroutes;
    /* Called for HTTP_AUTH routes: 0 to go on, -1 after replying (401/403/429). */
    int (*authenticate)(http_req_t *req);
    /* Called with ctx on the request's thread once its handler has returned, or the request
     * was refused; optional. (Not with the request: a deferred one belongs to another
     * thread by then.) */
    void (*finish)(void *ctx);
    void *ctx; /* handed to handlers through http_ctx() */
} http_server_opts_t;

http_server_t *http_server_start(const http_server_opts_t *opts, err_t *e);
int http_server_port(const http_server_t *s);
/* Stop accepting, let in-flight requests finish (up to grace_s), close everything. */
void http_server_stop(http_server_t *s, int grace_s);

/* ---- request accessors ---- */

void *http_ctx(http_req_t *r);
arena_t *http_arena(http_req_t *r);
const char *http_method(http_req_t *r);
const char *http_path(http_req_t *r);
const char *http_request_id(http_req_t *r);
const char *http_param(http_req_t *r, const char *name);
const char *http_query(http_req_t *r, const char *name);
/* Every value of a repeated query parameter (up to max); returns the count. */
int http_query_all(http_req_t *r, const char *name, const char **out, int max);
const char *http_header(http_req_t *r, const char *name);
const char *http_body(http_req_t *r, size_t *len);
/* The parsed JSON body of an HTTP_JSON route, NULL when the body was empty. */
json_t *http_json(http_req_t *r);
/* A field of an HTTP_FORM body (decoded), NULL if absent. */
const char *http_form(http_req_t *r, const char *name);
/* The authenticated principal, set by the auth hook. */
void http_set_principal(http_req_t *r, const char *project_id, const char *key_id);
const char *http_principal_project(http_req_t *r);
const char *http_principal_key(http_req_t *r);

/* Every request header and every decoded query pair, in the order sent (each.c). */
typedef void (*http_kv_fn)(void *ud, const char *name, const char *value);
void http_header_each(http_req_t *r, http_kv_fn fn, void *ud);
void http_query_each(http_req_t *r, http_kv_fn fn, void *ud);
/* The request URI as sent, query included. */
const char *http_raw_uri(http_req_t *r);
/* The peer's IP address as text ("" when unknown), for per-client limits (client.c). */
void http_client_ip(http_req_t *r, char *out, size_t cap);

/* ---- replies (exactly one per request) ---- */

void http_reply_json(http_req_t *r, int status, json_t *body); /* steals body */
void http_reply_raw(http_req_t *r, int status, const char *ctype, const void *body, size_t len);
void http_reply_err(http_req_t *r, const err_t *e);
void http_reply_error(http_req_t *r, err_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_add_header(http_req_t *r, const char *name, const char *value);
int http_replied(http_req_t *r);

/* ---- deferred replies (libmicrohttpd suspend/resume) ----
 * A handler that cannot answer before it returns (the answer comes from another thread: a
 * group commit, a flow's "http response" node) calls http_defer(r) BEFORE handing r to
 * that thread, and returns. The connection is suspended (the server thread serves other
 * connections meanwhile); r and everything it holds stay valid, even if the client goes
 * away. The other thread then sets exactly one reply (http_reply_*, http_add_header) and
 * calls http_complete(r) exactly once; the server sends the reply on its own thread. After
 * handing r over the handler must not touch it; after http_complete nobody may. Every
 * deferred request must be completed, with an error reply on timeout or shutdown too:
 * http_server_stop waits for them (the daemon cannot stop with suspended connections). */
void http_defer(http_req_t *r);
void http_complete(http_req_t *r);

/* ---- Server-Sent Events (sse.c) ----
 * A handler turns its request into an event stream with http_reply_sse (instead of any
 * other reply). The server then asks the source for data whenever the client can take
 * more; when the source has none, the connection is parked without holding a thread until
 * a producer calls http_sse_notify. Sources are pulled, never pushed: each keeps its own
 * cursor (e.g. the last event id it sent) and formats what is new. */
typedef struct {
    /* Append what is ready for this client to out (use http_sse_format); never block.
     * 0 keeps the stream open, -1 ends it (after sending what was appended). Runs on a
     * server thread. */
    int (*poll)(void *ud, buf_t *out);
    void (*free)(void *ud); /* once, when the stream ends for any reason (may be NULL) */
    void *ud;
} http_sse_source_t;

/* 200 text/event-stream; headers added with http_add_header are sent too. */
void http_reply_sse(http_req_t *r, const http_sse_source_t *src);
/* New data may be ready: every parked stream polls its source again. Thread-safe, cheap. */
void http_sse_notify(void);
/* "id: ..\nevent: ..\ndata: ..\n\n" (id/event may be NULL; multi-line data split). */
void http_sse_format(buf_t *out, const char *id, const char *event, const char *data);
/* Streams open now (for tests and metrics). */
int http_sse_open_count(void);

/* The error-model body {"error":{"code","message","status","details":[]}} (new ref). */
json_t *http_error_body(err_code_t code, const char *message);

/* ---- metrics (process-wide) ---- */

/* Prometheus text for the HTTP counters and latency histogram, appended to out. */
void http_metrics_render(buf_t *out);

#endif
