/* internal.h: structures shared by the core of Flows (model.c builds a set, runtime.c runs
 * it, context.c, debug.c, the core nodes). Not for node types of other helpers: they use
 * node.h only. */
#ifndef PARLEY_FLOWS_INTERNAL_H
#define PARLEY_FLOWS_INTERNAL_H

#include "flows/flows.h"
#include "flows/node.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct flows_set flows_set_t;
typedef struct flows_proj flows_proj_t;

/* A "flow": a tab, or one subflow instance (its own flow context, env, catch scope). */
typedef struct flows_flow {
    char *id; /* tab id, or the instance's (set-unique) node id */
    char *name;
    int disabled;
    struct flows_flow *parent; /* the flow holding the subflow instance; NULL for a tab */
    flows_node_t *instance;    /* subflow instance node (in parent), NULL for a tab */
    json_t *env;               /* [{name,type,value}] (instance entries first, then definition's) */
    char *subflow_id, *subflow_name; /* definition (subflow instances) */
    flows_node_t **catches, **statuses, **completes;
    int ncatch, nstatus, ncomplete;
} flows_flow_t;

typedef struct {
    int n;
    flows_node_t **to;
} flows_port_t;

struct flows_node {
    char *id;      /* set-unique */
    char *orig_id; /* as in flows.json */
    const char *type_name;
    const flows_node_type_t *type; /* NULL for internal proxies */
    json_t *cfg;                   /* own ref */
    flows_set_t *set;
    flows_flow_t *flow; /* NULL for config nodes outside any tab */
    int nports;
    flows_port_t *ports;
    void *state;
    int started;
    int watched; /* some complete node lists this node */
    /* internal proxies (subflow plumbing): 0 none, 1 subflow output port, 2 subflow status */
    int proxy;
    int proxy_port;
    flows_node_t *proxy_instance;
    flows_flow_t *inner; /* subflow instance node: its inner flow */
    flows_port_t sf_in;  /* subflow instance node: where its input goes */
    char *path;          /* NR_NODE_PATH: "tab/inst/node" */
};

struct flows_set {
    atomic_int refs;
    flows_proj_t *proj;
    char project_id[32];
    json_t *doc;   /* the deployed array */
    json_t *index; /* set-unique node id -> position in nodes */
    flows_node_t **nodes;
    int nnodes, cap;
    flows_flow_t **flows;
    int nflows, fcap;
    uint64_t gen;
};

/* model.c: build a runnable set from a validated document (steals doc). */
flows_set_t *flows_set_build(const char *project_id, json_t *doc);
void flows_set_free(flows_set_t *s);
flows_node_t *flows_set_find(flows_set_t *s, const char *id);

/* runtime.c */
void flows_set_unref(flows_set_t *s);
/* Deliver msg to node `to` (steals): queued on the project's executor. */
void flows_deliver(flows_node_t *to, json_t *msg);
/* The project's store connection for this thread (executor). */
store_conn_t *flows_conn(err_t *e);
const uint8_t *flows_seal_key(void);

/* debug.c: append an entry to the project's ring (entry: object; steals). */
void flows_debug_push(const char *project_id, json_t *entry);
void flows_debug_shutdown(void);
/* An entry for a node message (level "error"/"warn"/"info"). */
void flows_debug_log(flows_node_t *n, const char *level, const char *text);

/* nodes/inject.c: 5-field crontabs (m h dom mon dow, local time) */
typedef struct {
    uint64_t fields[5]; /* bitmasks: minute 0-59, hour 0-23, dom 1-31, month 1-12, dow 0-6 */
    int dom_star, dow_star;
} flows_cron_t;
int flows_cron_parse(const char *spec, flows_cron_t *c);
/* ms from now_ms to the start of the next matching minute, or -1 */
int64_t flows_cron_next(const flows_cron_t *c, int64_t now_ms);

/* context.c */
void flows_context_init(void);

#endif
