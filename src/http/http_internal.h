/* http_internal.h: the request structure and metrics hooks shared by the files of
 * src/http/ only. Handlers see http_req_t as opaque. */
#ifndef PARLEY_HTTP_INTERNAL_H
#define PARLEY_HTTP_INTERNAL_H

#include "http/http.h"
#include "base/ulid.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

typedef struct http_header_kv {
    const char *name, *value;
    struct http_header_kv *next;
} http_header_kv_t;

struct http_req {
    struct MHD_Connection *conn;
    struct http_server *server;
    int deferred; /* suspended by http_defer, waiting for http_complete */
    void *ctx;
    arena_t *arena;
    const char *method, *path;
    char *raw_uri; /* as sent, query included (from MHD's URI log callback) */
    char **query;  /* decoded name, value pairs, NULL-terminated; parsed on first use */
    char request_id[65];
    int64_t start_ns;
    int route; /* index into the route table, -1 when unmatched */
    const http_route_t *rt;
    http_params_t params;
    char *body;
    size_t body_len, body_cap;
    size_t drained; /* bytes of a too-large body read and discarded */
    int too_large;
    json_t *json;
    char **form; /* decoded name, value pairs, NULL-terminated */
    char project_id[ULID_LEN + 1], key_id[ULID_LEN + 1];
    /* reply */
    int replied, status;
    char *resp_body; /* malloc'd */
    size_t resp_len;
    const char *resp_ctype;
    http_header_kv_t *headers;
    http_sse_source_t *sse; /* set by http_reply_sse: the reply is an event stream */
};

/* Split "a=1&b=2" into decoded pairs in arena a; plus_is_space for form bodies only
 * (query strings keep '+': E.164 numbers arrive unencoded). */
char **http_parse_pairs(arena_t *a, const char *s, size_t n, int plus_is_space);

/* sse.c: queue the event-stream response of a request that called http_reply_sse; end
 * every stream at shutdown (before MHD_stop_daemon: no connection may stay suspended);
 * allow streams again (a later server in the same process, e.g. unit tests). */
enum MHD_Result http_sse_queue(http_req_t *r);
void http_sse_shutdown(void);
void http_sse_reset(void);

void http_metrics_init(const http_route_t *routes, size_t n);
void http_metrics_record(int route, int status, int64_t ns);
void http_metrics_shutdown(void);

#endif
