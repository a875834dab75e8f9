/* node.h: the node-type interface of Flows and the runtime services a node uses. Every
 * node type (nodes/<type>.c) defines one flows_node_type_t and registers it in
 * registry.c; the runtime (runtime.c) creates one flows_node_t per node of a deployed
 * flow set and calls the type's hooks, always on the project's executor: a project's
 * hooks, timers and posted tasks never run concurrently, so a node needs no locks for its
 * own state.
 *
 * Ownership: a msg (json_t object) handed to `input` belongs to the node (it must send,
 * keep or json_decref it). flows_send* steal the msg. Config json (flows_node_config) is
 * borrowed from the deployed set and lives as long as the node. The node's state pointer
 * is the type's to allocate in `start` and free in `stop`.
 *
 * Threads: only flows_post, flows_inject and flows_node_addr-based calls may be made from
 * other threads; everything else runs on the executor (inside a hook or a task). */
#ifndef PARLEY_FLOWS_NODE_H
#define PARLEY_FLOWS_NODE_H

#include "base/err.h"
#include "convo/convo.h"

#include <jansson.h>
#include <stdint.h>

typedef struct flows_node flows_node_t;         /* a node instance of a deployed flow set */
typedef struct flows_problems flows_problems_t; /* deploy-time problem list (model.c) */

/* ---- deploy-time validation ----
 * One problem, naming the node id and the config field (a path in the node's JSON, e.g.
 * "rules[0].v"), e.g. ("n1", "rules[0].v", "bad regular expression: ..."). Field "" means
 * the node as a whole. */
void flows_problem(flows_problems_t *p, const char *node_id, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* The node id the current validate hook runs for (so helpers can report without it). */
const char *flows_problems_node(const flows_problems_t *p);
/* 1 if a node with this id exists in the set being validated (any type, any tab). Lets a
 * validate hook check references (config nodes, link targets). type may be NULL; when
 * given the node must be of that type. */
int flows_problems_has_node(const flows_problems_t *p, const char *id, const char *type);

/* ---- node types ---- */
typedef struct {
    const char *type; /* Node-RED type name: "switch", "link in", "sinch-send" */
    int config_only;  /* config nodes (no wires, never receive messages, may have no tab) */
    /* Optional, no side effects: report every problem of cfg (the node's JSON object). The
     * model already checked id/type/z/wires/d and the shared fields. */
    void (*validate)(const json_t *cfg, flows_problems_t *p);
    /* Optional: build state at deploy (config is valid). -1 with e filled aborts nothing:
     * the node is marked failed, the error goes to the debug stream, other nodes run. */
    int (*start)(flows_node_t *n, err_t *e);
    /* A message arrives (NULL for config_only types). Owns msg. */
    void (*input)(flows_node_t *n, json_t *msg);
    /* Optional: undeploy or shutdown: cancel what you started, free state. Timers of the
     * node are cancelled by the runtime anyway. */
    void (*stop)(flows_node_t *n);
    /* 1 when the type calls flows_done itself (async nodes); 0 = the runtime signals
     * completion when `input` returns (used by `complete` nodes). */
    int calls_done;
} flows_node_type_t;

/* registry.c: the table of supported types. */
const flows_node_type_t *flows_type_find(const char *type);
/* Comma-separated list of every supported type name, sorted (for error messages). */
const char *flows_type_list(void);

/* ---- node accessors (executor thread) ---- */
const char *flows_node_id(
    const flows_node_t *n); /* unique in the set ("<inst>-<id>" inside a subflow instance) */
const char *flows_node_orig_id(const flows_node_t *n); /* the id as written in flows.json */
const char *flows_node_type(const flows_node_t *n);
const char *flows_node_name(const flows_node_t *n); /* "" when unnamed */
const char *flows_node_tab(const flows_node_t *n);  /* z: the tab (or subflow instance) id */
const char *flows_node_project(const flows_node_t *n);
json_t *flows_node_config(const flows_node_t *n); /* borrowed: the node's JSON object */
int flows_node_outputs(const flows_node_t *n);    /* number of output ports (wires) */
void *flows_node_state(const flows_node_t *n);
void flows_node_set_state(flows_node_t *n, void *state);
/* The config node whose id is the string value of field `field` of n's config (e.g.
 * flows_node_ref(n, "app")), or NULL (absent, empty or not deployed). */
flows_node_t *flows_node_ref(flows_node_t *n, const char *field);
/* Any node of the same deployed set by its id as written in flows.json; inside a subflow
 * instance the instance's own copy is preferred. NULL if none. */
flows_node_t *flows_node_find(flows_node_t *n, const char *id);

/* ---- messages ---- */
/* A new empty msg object with a fresh `_msgid` (new ref). */
json_t *flows_msg_new(void);
/* Deep copy keeping `_msgid` (Node-RED's RED.util.cloneMessage). New ref. */
json_t *flows_msg_clone(const json_t *msg);

/* ---- sending (executor thread) ----
 * Delivery is asynchronous (queued on the project's executor in FIFO order, as Node-RED
 * 1.x+): the first wire of a port gets msg itself, the others deep copies. */
void flows_send(flows_node_t *n, int port, json_t *msg); /* steals msg */
/* per_port: array with one entry per output: msg | [msgs] | null. Steals per_port. */
void flows_send_ports(flows_node_t *n, json_t *per_port);
/* The node finished with msg (triggers `complete` nodes watching n). Borrows msg. Only
 * needed for types with calls_done = 1. */
void flows_done(flows_node_t *n, const json_t *msg);
/* Raise an error: with a msg, `catch` nodes of the node's tab (or enclosing subflow
 * instance, then its tab) get a copy with msg.error = {message, source{id,type,name,
 * count}}; without a catch, or with msg == NULL, it goes to the debug stream as an
 * error. Steals msg (may be NULL). Counts as done for the msg. */
void flows_error(flows_node_t *n, json_t *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void flows_warn(flows_node_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* level: "info" | "warn" | "error" | "debug" | "trace": the process log, and warn/error
 * also the debug stream. */
void flows_log(flows_node_t *n, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Node status (all NULL clears it): `status` nodes of the tab get
 * msg.status = {fill, shape, text, source{id,type,name}}. fill: red|green|yellow|blue|grey;
 * shape: ring|dot. */
void flows_status(flows_node_t *n, const char *fill, const char *shape, const char *text);

/* ---- tasks and timers (serialized with the project's messages) ---- */
typedef void (*flows_task_fn)(flows_node_t *n, void *arg);
/* Call fn(n, arg) after delay_ms on the executor. Returns a timer id (> 0). When the node
 * is stopped or undeployed before that, fn is not called and free_arg(arg) is (free_arg
 * may be NULL). After fn runs, arg is the task's (free_arg is not called). */
uint64_t flows_timer(flows_node_t *n, int64_t delay_ms, flows_task_fn fn, void *arg,
                     void (*free_arg)(void *));
/* Cancel a pending timer (calls free_arg). Unknown or already fired ids are ignored. */
void flows_timer_cancel(flows_node_t *n, uint64_t id);

/* From ANY thread (an HTTP reply arrived, a stream event): run fn on the executor of
 * project_id with the node of that id in the project's CURRENTLY deployed set. If no such
 * node is deployed when the task runs (undeployed meanwhile), fn is not called and
 * free_arg(arg) is. A redeploy that keeps the node id hands the task to the new instance.
 * Posted from a task, the new task carries that task's origin (see origins below). */
void flows_post(const char *project_id, const char *node_id, flows_task_fn fn, void *arg,
                void (*free_arg)(void *));
/* ---- origins: at-least-once entry messages ----
 * An entry message kept outside the runtime until its flow is done with it (a flows_inbox
 * row, convapi.c) is posted with an origin. Every task, timer and hold made while one of
 * its tasks runs carries the same origin, so the origin lives while the message's work is
 * queued or armed. When the last of it is gone, release runs (any thread): settled means a
 * node already made the message's record go inside a transaction of its own, and kept
 * means some of the work was dropped unrun because the runtime stopped (the record should
 * stay, so the message runs again at the next start). */
typedef struct flows_origin flows_origin_t;
typedef struct {
    int (*settle)(void *ud, store_conn_t *c, err_t *e); /* in the caller's transaction */
    void (*release)(void *ud, int settled, int kept);
} flows_origin_hooks_t;
/* refs = 1: the caller's, dropped with flows_origin_drop once it has posted the work. */
flows_origin_t *flows_origin_new(const flows_origin_hooks_t *hooks, void *ud);
/* The running task's origin, held (NULL if none): for work that finishes on another thread
 * (an HTTP reply), posted back with flows_post_from and dropped after. */
flows_origin_t *flows_origin_hold(void);
void flows_origin_drop(flows_origin_t *o);
/* Inside the caller's open transaction, at a node's durable effect (a message sent): make
 * the running task's origin record go with it. 1 if it did, 0 if there was none (no origin,
 * or settled already), -1 on error. After the COMMIT, flows_origin_settled(). So the effect
 * happens exactly once across a crash: either both commit or the message runs again. */
int flows_origin_settle(store_conn_t *c, err_t *e);
void flows_origin_settled(void);
/* flows_post with an explicit origin (held by the task; NULL for none). */
void flows_post_from(flows_origin_t *o, const char *project_id, const char *node_id,
                     flows_task_fn fn, void *arg, void (*free_arg)(void *));

/* From ANY thread: start a message at a node (entry points: http in, stream events): the
 * node's `input` gets msg (a `_msgid` is added when missing). Resolved when the task runs,
 * against the then-deployed set, so an event is never lost or doubled by a redeploy
 * (it goes to exactly one set). Steals msg. 0 when queued, -1 if the project has no such
 * node deployed right now (msg freed). */
int flows_inject(const char *project_id, const char *node_id, json_t *msg);
/* Ids of every deployed node of `type` in a project, for entry points (new ref: array of
 * strings; empty array when none). Any thread. */
json_t *flows_nodes_of_type(const char *project_id, const char *type);

/* ---- context (persisted in the store; survives restart and redeploy) ----
 * scope: "node" | "flow" | "global". Keys may be nested ("a.b[0]"), as Node-RED's
 * context get/set. A Node-RED store prefix "#:(store)::" is accepted and ignored. */
json_t *flows_context_get(flows_node_t *n, const char *scope, const char *key); /* new ref/NULL */
/* v borrowed; NULL deletes. 0 or -1 (store error, logged). */
int flows_context_set(flows_node_t *n, const char *scope, const char *key, const json_t *v);
/* Top-level keys of a scope (new ref: array of strings). */
json_t *flows_context_keys(flows_node_t *n, const char *scope);

/* ---- environment ----
 * Node-RED order: the node's subflow instance env (and its definition's env), outer
 * instances, the tab's env, then the process environment; plus NR_NODE_ID, NR_NODE_NAME,
 * NR_NODE_PATH, NR_FLOW_ID, NR_FLOW_NAME, NR_SUBFLOW_ID, NR_SUBFLOW_NAME. Returns a new
 * ref (typed env entries keep their type: num -> number, bool, json) or NULL if unset. */
json_t *flows_env_value(flows_node_t *n, const char *name);
/* The same as a string (numbers/bools formatted, json dumped); caller frees; NULL if unset. */
char *flows_env_get(flows_node_t *n, const char *name);

/* ---- Parley services ----
 * The store connection of the executor thread and a Conversation API context for the
 * node's project (actor "flow:<node id>"). 0, or -1 with e filled. */
int flows_node_convo(flows_node_t *n, convo_ctx_t *cx, err_t *e);

#endif
