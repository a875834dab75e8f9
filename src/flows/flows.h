/* flows.h: the Flows module entry (issue 5): start/stop of the runtime (worker pool,
 * timers, per-project executors), and the deploy/export API the admin handlers
 * (src/api/flows.c) call. Node types and the services they use are in flows/node.h;
 * property paths and typed inputs in flows/props.h.
 *
 * Ownership: functions returning json_t return new references; text returned as char *
 * is malloc'd and the caller frees it. */
#ifndef PARLEY_FLOWS_H
#define PARLEY_FLOWS_H

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "http/http.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

/* Start the runtime: worker pool, timer thread, and every project's deployed flows from
 * the store. seal_key (32 bytes) is copied. Call after store_open, before the HTTP server;
 * flows_stop before store_close. Without flows_start, the deploy API still validates and
 * stores (the runtime part is skipped), which the unit tests use. */
int flows_start(store_t *store, const uint8_t seal_key[32], const config_t *cfg, err_t *e);
void flows_stop(void);
/* The store the runtime uses (NULL before flows_start). */
store_t *flows_store(void);

/* ---- validation (model.c) ----
 * Validate a flows.json document (the array). Returns NULL when valid; else a new JSON
 * array of problems [{node_id, field, message}], and e is filled with INVALID_ARGUMENT and
 * a summary ("3 problems in flows: first: node n1: ..."). Also -> NULL with e filled when
 * flows is not even an array (then *problems is one entry). */
json_t *flows_validate(const json_t *flows, err_t *e);

/* ---- deploy and export (deploy.c) ----
 * All run on the caller's thread with the caller's store connection. Errors: e filled;
 * problems (when validation failed) is set to a new ref of the details array. */

/* Deploy a whole set: flows_text is the flows.json array text as given (kept verbatim).
 * rev_expected NULL/"" = unconditional; stale -> ERR_ABORTED. On success writes the new
 * rev (ULID) into rev_out. note: "deploy", "restore ..." */
int flows_deploy(store_conn_t *c, const char *project_id, const char *flows_text,
                 const char *rev_expected, const char *actor, const char *note, char rev_out[32],
                 json_t **problems, err_t *e);
/* The deployed set: *text = the array text (malloc'd; "[]" when nothing deployed) and
 * rev_out ("" when nothing deployed). */
int flows_export(store_conn_t *c, const char *project_id, char **text, char rev_out[32], err_t *e);
/* Revisions, newest first: [{rev, created_at (RFC 3339), actor, note, nodes, live}]. */
json_t *flows_revisions(store_conn_t *c, const char *project_id, int limit, err_t *e);
/* Text of one revision (NOT_FOUND if none). */
char *flows_revision_text(store_conn_t *c, const char *project_id, const char *rev, err_t *e);

/* ---- runtime (runtime.c) ---- */
/* Swap a project's running set to the parsed flows of revision rev (steals flows; NULL
 * only records rev): queued on the project's executor, between two messages. Called by
 * flows_deploy after its commit and by flows_deploy_sync. */
void flows_runtime_deploy(const char *project_id, const char *rev, json_t *flows);
/* The revision last handed to the runtime for the project ("" if none); 0 if unknown. */
int flows_runtime_rev(const char *project_id, char out[32]);
/* Start every project whose live revision in the store differs from the runtime's (at
 * start, and every 2 s for deploys made by another process, e.g. `parley projects
 * create` deploying Hello world). Serialized with flows_deploy. */
int flows_deploy_sync(store_conn_t *c, err_t *e);
/* Wait until everything queued on the project's executor so far has run (e.g. a deploy:
 * the admin API answers once the new set is live). Never call it from an executor thread
 * or while holding a store transaction a node's start hook may need. 0, or -1 on timeout. */
int flows_runtime_sync(const char *project_id, int timeout_ms);

/* Append the runtime's Prometheus metrics (parley_flows_*) to out. */
void flows_metrics_render(buf_t *out);

/* ---- debug stream (debug.c) ---- */
/* The project's ring (last 1,000 entries, oldest first) after entry id `after` (0 = all):
 * a new JSON array. */
json_t *flows_debug_list(const char *project_id, int64_t after, int limit);
/* Reply to req with an SSE stream of the project's debug entries, starting after
 * last_event_id (NULL = only new entries). */
void flows_debug_sse(http_req_t *req, const char *project_id, const char *last_event_id);

#endif
