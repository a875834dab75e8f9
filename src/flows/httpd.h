/* httpd.h: the HTTP entry points of deployed flows (`http in` / `http response` nodes,
 * nodes/http_in.c). `http in` nodes register their method and URL pattern per project
 * while deployed; a request to /flows/{project_id}/<url> is matched against them, turned
 * into a msg (msg.req, msg.res, msg.payload) and injected at the node; the request is
 * deferred (no server thread waits) until an `http response` node answers it, a timeout
 * answers 504, or shutdown answers 503. */
#ifndef PARLEY_FLOWS_HTTPD_H
#define PARLEY_FLOWS_HTTPD_H

#include "http/http.h"

#include <stdint.h>

/* Serve one request (any method); rest is the path after /flows/{project_id}/ (raw). */
void flows_http_handle(http_req_t *r, const char *project_id, const char *rest);

/* How long a flow may take to answer before the request gets 504 (default 120 s, or
 * PARLEY_FLOWS_HTTP_TIMEOUT seconds from the environment). */
void flows_http_set_timeout_ms(int64_t ms);

/* Stop taking flow requests (503), give the pending ones up to grace_s to be answered,
 * then answer the rest 503. Call before http_server_stop. Safe to call when unused. */
void flows_http_shutdown(int grace_s);

/* Requests waiting for their flow right now (tests, metrics). */
int flows_http_pending(void);

#endif
