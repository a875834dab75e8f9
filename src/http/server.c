/* server.c: libmicrohttpd glue. MHD runs its own epoll thread pool (one thread per core by
 * default); each request gets an arena and a struct http_req on its first callback, the
 * body is accumulated up to max_body, and on the last callback the request is routed,
 * authenticated, decoded and handed to its handler. Completion logs one line and records
 * metrics. SIGTERM handling lives in main.c: it calls http_server_stop. */
#define _GNU_SOURCE
#include "http/http_internal.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_opts_t opts;
    http_router_t *router;
    atomic_int inflight;
    atomic_int deferred; /* suspended by http_defer, not yet resumed */
    int port;
};

static const char *status_text_ctype = "application/json";

static void req_free(http_req_t *r)
{
    json_decref(r->json);
    if (r->sse && r->sse->free) r->sse->free(r->sse->ud); /* never handed to a stream */
    free(r->sse);
    free(r->body);
    free(r->resp_body);
    arena_destroy(r->arena);
    free(r);
}

static int request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    return 1;
}

static enum MHD_Result send_reply(http_req_t *r)
{
    if (!r->replied) http_reply_error(r, ERR_INTERNAL, "handler produced no response");
    if (r->sse) return http_sse_queue(r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp_body, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->resp_body = NULL; /* MHD owns it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->resp_ctype ? r->resp_ctype : status_text_ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (http_header_kv_t *h = r->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int media_type_is(const char *ctype, const char *want)
{
    if (!ctype) return 0;
    while (*ctype == ' ')
        ctype++;
    size_t n = strlen(want);
    return strncasecmp(ctype, want, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

static void dispatch(http_server_t *s, http_req_t *r)
{
    char allow[64];
    switch (http_router_match(s->router, r->method, r->path, r->arena, &r->route, &r->params, allow,
                              sizeof allow)) {
    case HTTP_MATCH_OK:
        break;
    case HTTP_MATCH_NOT_FOUND:
        http_reply_error(r, ERR_NOT_FOUND, "no such resource: %s", r->path);
        return;
    case HTTP_MATCH_METHOD:
        http_add_header(r, "Allow", allow);
        http_reply_error(r, ERR_METHOD, "method %s not allowed on %s (allowed: %s)", r->method,
                         r->path, allow);
        return;
    case HTTP_MATCH_BAD_PATH:
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "malformed path: segments must not be '.' or '..', contain control "
                         "characters, or exceed %d bytes",
                         HTTP_MAX_SEGMENT_LEN);
        return;
    }
    r->rt = &s->opts.routes[r->route];
    if (r->too_large) {
        http_reply_error(r, ERR_TOO_LARGE, "request body exceeds %zu bytes", s->opts.max_body);
        return;
    }
    if ((r->rt->flags & HTTP_AUTH) && s->opts.authenticate && s->opts.authenticate(r) < 0) {
        if (!r->replied) http_reply_error(r, ERR_UNAUTHENTICATED, "authentication failed");
        return;
    }
    if (r->body_len > 0 && !(r->rt->flags & HTTP_RAW)) {
        const char *ctype = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (r->rt->flags & HTTP_JSON) {
            if (!media_type_is(ctype, "application/json")) {
                http_reply_error(r, ERR_MEDIA_TYPE, "Content-Type must be application/json, got %s",
                                 ctype ? ctype : "none");
                return;
            }
            err_t e;
            r->json = jsonx_parse(r->body, r->body_len, &e);
            if (!r->json) {
                http_reply_err(r, &e);
                return;
            }
        } else if (r->rt->flags & HTTP_FORM) {
            if (!media_type_is(ctype, "application/x-www-form-urlencoded")) {
                http_reply_error(r, ERR_MEDIA_TYPE,
                                 "Content-Type must be application/x-www-form-urlencoded, got %s",
                                 ctype ? ctype : "none");
                return;
            }
        } else {
            http_reply_error(r, ERR_INVALID_ARGUMENT, "%s %s takes no request body", r->method,
                             r->rt->pattern);
            return;
        }
    }
    r->rt->fn(r);
}

/* Bodies up to this size are read and discarded before a 413 (see on_request). */
static size_t drain_limit(const http_server_t *s)
{
    return s->opts.max_body * 8;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server_t *s = cls;
    http_req_t *r = *con_cls;
    if (!r) return MHD_NO; /* uri_log always creates it */
    if (r->deferred) {     /* resumed: the reply was set on another thread (http_complete) */
        r->deferred = 0;
        return send_reply(r);
    }
    if (!r->conn) {
        r->conn = conn;
        r->server = s;
        r->ctx = s->opts.ctx;
        r->method = method;
        r->path = arena_strdup(r->arena, url);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && request_id_ok(rid))
            snprintf(r->request_id, sizeof r->request_id, "%s", rid);
        else
            ulid_new(r->request_id);
        *con_cls = r;
        const char *clen =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen && strtoull(clen, NULL, 10) > drain_limit(s)) {
            /* Far too large to read: refuse at once; MHD closes the connection after it. */
            http_reply_error(r, ERR_TOO_LARGE, "request body exceeds %zu bytes", s->opts.max_body);
            return send_reply(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->replied) { /* already refused: drain */
            *upload_size = 0;
            return MHD_YES;
        }
        if (r->too_large || r->body_len + *upload_size > s->opts.max_body) {
            /* Too large: read on and discard, so the client, still sending, gets the 413 on
             * a live connection once it has finished (a reset mid-upload loses the answer).
             * Past the drain limit, refuse at once and let MHD close. */
            r->too_large = 1;
            r->drained += *upload_size;
            *upload_size = 0;
            if (r->drained > drain_limit(s)) {
                http_reply_error(r, ERR_TOO_LARGE, "request body exceeds %zu bytes",
                                 s->opts.max_body);
                return send_reply(r);
            }
            return MHD_YES;
        }
        if (r->body_len + *upload_size + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 1024;
            while (cap < r->body_len + *upload_size + 1)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb) return MHD_NO;
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload, *upload_size);
        r->body_len += *upload_size;
        r->body[r->body_len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->replied) return MHD_YES; /* the reply was queued early */
    dispatch(s, r);
    if (s->opts.finish) s->opts.finish(s->opts.ctx); /* r: see http_defer */
    if (r->deferred) return MHD_YES; /* answered later, on resume; r may be in use elsewhere */
    return send_reply(r);
}

void http_defer(http_req_t *r)
{
    /* Suspend now, inside the access handler: a resume from the other thread, however early,
     * then finds the connection suspended and is processed once the handler returns. */
    r->deferred = 1;
    atomic_fetch_add(&r->server->deferred, 1);
    MHD_suspend_connection(r->conn);
}

void http_complete(http_req_t *r)
{
    http_server_t *s = r->server; /* r may be freed once resumed; the server may not */
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&s->deferred, 1);
}

/* MHD calls this first for every request, with the raw URI: its return value becomes the
 * request's con_cls, so the request is born here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    http_server_t *s = cls;
    http_req_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    atomic_fetch_add(&s->inflight, 1);
    r->arena = arena_create(4096);
    r->raw_uri = arena_strdup(r->arena, uri ? uri : "");
    r->route = -1;
    r->start_ns = clock_mono_ns();
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server_t *s = cls;
    http_req_t *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    int64_t ns = clock_mono_ns() - r->start_ns;
    int status = r->replied ? r->status : 499; /* client went away before a reply */
    http_metrics_record(r->route, status, ns);
    if (log_enabled(LOG_INFO)) {
        char st[16], ms[32];
        snprintf(st, sizeof st, "%d", status);
        snprintf(ms, sizeof ms, "%.3f", (double)ns / 1e6);
        log_kv(status >= 500 ? LOG_WARN : LOG_INFO, "request", "request_id", r->request_id,
               "method", r->method, "path", r->path, "#status", st, "#ms", ms, "project",
               r->project_id[0] ? r->project_id : NULL, "ended",
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted");
    }
    req_free(r);
    atomic_fetch_sub(&s->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_kv(LOG_DEBUG, "libmicrohttpd", "detail", msg);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, err_t *e)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return err_set(e, ERR_INVALID_ARGUMENT, "listen \"%s\": expected ADDR:PORT", listen);
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) return err_set(e, ERR_INVALID_ARGUMENT, "listen address too long");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return err_set(e, ERR_INVALID_ARGUMENT, "listen \"%s\": bad port", listen);
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return err_set(e, ERR_INVALID_ARGUMENT, "listen \"%s\": bad IPv6 address", listen);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (hl == 0 || strcmp(host, "*") == 0) {
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (strcmp(host, "localhost") == 0) {
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        return err_set(e, ERR_INVALID_ARGUMENT, "listen \"%s\": bad IPv4 address", listen);
    }
    return 0;
}

http_server_t *http_server_start(const http_server_opts_t *opts, err_t *e)
{
    struct sockaddr_storage ss = {0};
    if (parse_listen(opts->listen, &ss, e) < 0) return NULL;
    http_server_t *s = xcalloc(1, sizeof *s);
    s->opts = *opts;
    s->router = http_router_new(opts->routes, opts->nroutes, e);
    if (!s->router) {
        free(s);
        return NULL;
    }
    http_metrics_init(opts->routes, opts->nroutes);
    int threads = opts->threads > 0 ? opts->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME; /* http_defer */
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    int tls = opts->tls_cert_pem && opts->tls_key_pem;
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            http_router_free(s->router);
            free(s);
            err_set(e, ERR_FAILED_PRECONDITION, "this libmicrohttpd was built without TLS support");
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)opts->tls_cert_pem},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)opts->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!s->daemon) {
        http_router_free(s->router);
        free(s);
        err_set(e, ERR_UNAVAILABLE, "cannot listen on %s (in use, or not permitted%s)",
                opts->listen, tls ? ", or bad TLS certificate/key" : "");
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
}

int http_server_port(const http_server_t *s)
{
    return s->port;
}

void http_server_stop(http_server_t *s, int grace_s)
{
    if (!s) return;
    /* The listen socket is ours once quiesced. Shut it down at once (new connections are
     * refused) but close it only after the daemon stopped: each pool thread removes it
     * from its own epoll set after this call returns, and a socket already closed makes
     * that fail, which libmicrohttpd treats as fatal (an abort at shutdown, seen in CI). */
    MHD_socket lsock = MHD_quiesce_daemon(s->daemon);
    if (lsock != MHD_INVALID_SOCKET) shutdown(lsock, SHUT_RDWR);
    http_sse_shutdown(); /* event streams end now; they would never finish by themselves */
    int64_t deadline = clock_mono_ms() + (int64_t)grace_s * 1000;
    while (atomic_load(&s->inflight) > 0 && clock_mono_ms() < deadline)
        usleep(10000);
    if (atomic_load(&s->inflight) > 0)
        log_msg(LOG_WARN, "shutdown: %d requests still running after %d s; closing them",
                atomic_load(&s->inflight), grace_s);
    /* Suspended connections must be resumed before MHD_stop_daemon; their owners promise to
     * (http.h), so wait for them past the grace period. */
    for (int64_t next_log = clock_mono_ms() + 5000; atomic_load(&s->deferred) > 0;) {
        usleep(10000);
        if (clock_mono_ms() >= next_log) {
            log_msg(LOG_WARN, "shutdown: waiting for %d deferred replies",
                    atomic_load(&s->deferred));
            next_log += 5000;
        }
    }
    MHD_stop_daemon(s->daemon);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    http_sse_reset();
    http_router_free(s->router);
    http_metrics_shutdown();
    free(s);
}
