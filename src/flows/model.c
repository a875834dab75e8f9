/* model.c: flows.json as Parley reads it. flows_validate checks a whole document and
 * reports every problem precisely (node id + field); flows_set_build turns a validated
 * document into a runnable set: one flows_node_t per enabled node, subflow instances
 * expanded (inner node ids "<instance>-<id>", as Node-RED), wires resolved to pointers,
 * catch/status/complete nodes registered with their flow. */
#include "flows/internal.h"

#include "base/buf.h"
#include "base/jsonx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- problems ---- */

struct flows_problems {
    json_t *list;     /* [{node_id, field, message}] */
    json_t *index;    /* id -> node object (borrowed values) */
    const char *node; /* the node being validated */
};

void flows_problem(flows_problems_t *p, const char *node_id, const char *field, const char *fmt,
                   ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (json_array_size(p->list) >= 200) return; /* enough to fix first */
    json_array_append_new(p->list, json_pack("{s:s,s:s,s:s}", "node_id", node_id ? node_id : "",
                                             "field", field ? field : "", "message", msg));
}

const char *flows_problems_node(const flows_problems_t *p)
{
    return p->node;
}

int flows_problems_has_node(const flows_problems_t *p, const char *id, const char *type)
{
    if (!id) return 0;
    json_t *n = json_object_get(p->index, id);
    if (!n) return 0;
    if (!type) return 1;
    const char *t = json_string_value(json_object_get(n, "type"));
    return t && strcmp(t, type) == 0;
}

static const char *str_of(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int is_structural(const char *type)
{
    return strcmp(type, "tab") == 0 || strcmp(type, "subflow") == 0 || strcmp(type, "group") == 0;
}

/* Subflow recursion: DFS over definitions; state 1 = on the stack, 2 = done. */
static int sf_cycle(json_t *doc, json_t *state, const char *sf, buf_t *path)
{
    json_t *st = json_object_get(state, sf);
    if (st && json_integer_value(st) == 2) return 0;
    if (st && json_integer_value(st) == 1) {
        buf_printf(path, "%s", sf);
        return 1;
    }
    json_object_set_new(state, sf, json_integer(1));
    size_t i;
    json_t *n;
    json_array_foreach(doc, i, n)
    {
        if (strcmp(str_of(n, "z"), sf) != 0) continue;
        const char *t = str_of(n, "type");
        if (strncmp(t, "subflow:", 8) != 0) continue;
        size_t mark = path->len;
        buf_printf(path, "%s -> ", sf);
        if (sf_cycle(doc, state, t + 8, path)) return 1;
        path->len = mark;
        path->data[mark] = 0;
    }
    json_object_set_new(state, sf, json_integer(2));
    return 0;
}

static void check_port_wires(flows_problems_t *p, const char *id, json_t *ports, const char *name,
                             int with_port)
{
    if (!ports) return;
    if (!json_is_array(ports)) {
        flows_problem(p, id, name, "must be an array");
        return;
    }
    size_t i, j;
    json_t *port, *w;
    json_array_foreach(ports, i, port)
    {
        json_t *wires = json_object_get(port, "wires");
        if (!json_is_object(port) || (wires && !json_is_array(wires))) {
            flows_problem(p, id, name, "port %zu must be an object with a wires array", i);
            continue;
        }
        json_array_foreach(wires, j, w)
        {
            char f[160];
            snprintf(f, sizeof f, "%s[%zu].wires[%zu].id", name, i, j);
            const char *to = str_of(w, "id");
            if (!*to)
                flows_problem(p, id, f, "missing id");
            else if (!json_object_get(p->index, to) && strcmp(to, id) != 0)
                flows_problem(p, id, f, "wire to missing node '%s'", to);
            if (with_port && json_object_get(w, "port") &&
                !json_is_integer(json_object_get(w, "port")))
                flows_problem(p, id, f, "port must be an integer");
        }
    }
}

json_t *flows_validate(const json_t *flows, err_t *e)
{
    flows_problems_t p = {.list = json_array(), .index = json_object()};
    json_t *doc = (json_t *)flows;
    if (!json_is_array(doc)) {
        flows_problem(&p, "", "flows", "flows must be an array of nodes, got %s",
                      flows ? jsonx_type_name(flows) : "nothing");
        goto done;
    }
    size_t i;
    json_t *n;
    /* pass 1: shape and ids */
    json_array_foreach(doc, i, n)
    {
        char f[128];
        snprintf(f, sizeof f, "flows[%zu]", i);
        if (!json_is_object(n)) {
            flows_problem(&p, "", f, "must be an object, got %s", jsonx_type_name(n));
            continue;
        }
        json_t *id = json_object_get(n, "id"), *type = json_object_get(n, "type");
        if (!json_is_string(id) || !json_string_length(id)) {
            flows_problem(&p, "", f, "node without a string id");
            continue;
        }
        if (!json_is_string(type) || !json_string_length(type)) {
            flows_problem(&p, json_string_value(id), "type", "missing node type");
            continue;
        }
        if (json_string_length(id) > 100) {
            flows_problem(&p, json_string_value(id), "id", "id longer than 100 characters");
            continue;
        }
        if (json_object_get(p.index, json_string_value(id))) {
            flows_problem(&p, json_string_value(id), "id", "duplicate node id");
            continue;
        }
        json_object_set(p.index, json_string_value(id), n);
    }
    /* pass 2: each node */
    const char *key;
    json_object_foreach(p.index, key, n)
    {
        const char *type = str_of(n, "type");
        p.node = key;
        json_t *z = json_object_get(n, "z");
        if (z && !json_is_string(z)) flows_problem(&p, key, "z", "must be a string");
        const char *zs = str_of(n, "z");
        if (*zs) {
            json_t *owner = json_object_get(p.index, zs);
            const char *ot = owner ? str_of(owner, "type") : "";
            if (!owner)
                flows_problem(&p, key, "z", "tab or subflow '%s' does not exist", zs);
            else if (strcmp(ot, "tab") != 0 && strcmp(ot, "subflow") != 0)
                flows_problem(&p, key, "z", "'%s' is a %s, not a tab or subflow", zs, ot);
        }
        json_t *d = json_object_get(n, "d");
        if (d && !json_is_boolean(d)) flows_problem(&p, key, "d", "must be a boolean");
        if (strcmp(type, "tab") == 0) {
            json_t *dis = json_object_get(n, "disabled");
            if (dis && !json_is_boolean(dis))
                flows_problem(&p, key, "disabled", "must be a boolean");
        }
        json_t *env = json_object_get(n, "env");
        if (env && (strcmp(type, "tab") == 0 || strcmp(type, "subflow") == 0 ||
                    strncmp(type, "subflow:", 8) == 0)) {
            size_t k;
            json_t *ev;
            if (!json_is_array(env))
                flows_problem(&p, key, "env", "must be an array");
            else
                json_array_foreach(env, k, ev)
                {
                    char f[128];
                    snprintf(f, sizeof f, "env[%zu]", k);
                    if (!json_is_string(json_object_get(ev, "name")))
                        flows_problem(&p, key, f, "env entry without a name");
                    const char *et = str_of(ev, "type");
                    if (strcmp(et, "jsonata") == 0 || strcmp(et, "cred") == 0)
                        flows_problem(&p, key, f, "env type '%s' is not supported by Parley", et);
                }
        }
        if (is_structural(type)) {
            if (strcmp(type, "subflow") == 0) {
                check_port_wires(&p, key, json_object_get(n, "in"), "in", 0);
                check_port_wires(&p, key, json_object_get(n, "out"), "out", 1);
                json_t *st = json_object_get(n, "status");
                if (st) {
                    json_t *one = json_pack("[O]", st);
                    check_port_wires(&p, key, one, "status", 1);
                    json_decref(one);
                }
            }
            continue;
        }
        const flows_node_type_t *t = NULL;
        if (strncmp(type, "subflow:", 8) == 0) {
            json_t *def = json_object_get(p.index, type + 8);
            if (!def || strcmp(str_of(def, "type"), "subflow") != 0) {
                flows_problem(&p, key, "type", "subflow '%s' is not defined", type + 8);
                continue;
            }
        } else if (!(t = flows_type_find(type))) {
            flows_problem(&p, key, "type", "unknown node type '%s'; Parley supports: %s", type,
                          flows_type_list());
            continue;
        }
        json_t *wires = json_object_get(n, "wires");
        if (wires) {
            if (!json_is_array(wires))
                flows_problem(&p, key, "wires", "must be an array");
            else {
                size_t pi, wi;
                json_t *port, *w;
                json_array_foreach(wires, pi, port)
                {
                    char f[128];
                    snprintf(f, sizeof f, "wires[%zu]", pi);
                    if (!json_is_array(port)) {
                        flows_problem(&p, key, f, "must be an array of node ids");
                        continue;
                    }
                    json_array_foreach(port, wi, w)
                    {
                        snprintf(f, sizeof f, "wires[%zu][%zu]", pi, wi);
                        if (!json_is_string(w))
                            flows_problem(&p, key, f, "must be a node id");
                        else if (!json_object_get(p.index, json_string_value(w)))
                            flows_problem(&p, key, f, "wire to missing node '%s'",
                                          json_string_value(w));
                        else {
                            json_t *tn = json_object_get(p.index, json_string_value(w));
                            const flows_node_type_t *tt = flows_type_find(str_of(tn, "type"));
                            if ((tt && tt->config_only) || is_structural(str_of(tn, "type")))
                                flows_problem(&p, key, f,
                                              "wire to '%s', a %s, which takes no messages",
                                              json_string_value(w), str_of(tn, "type"));
                        }
                    }
                }
            }
        }
        if (t && t->validate) t->validate(n, &p);
    }
    /* pass 3: recursive subflows */
    json_t *state = json_object();
    json_object_foreach(p.index, key, n)
    {
        if (strcmp(str_of(n, "type"), "subflow") != 0) continue;
        buf_t path = {0};
        if (sf_cycle(doc, state, key, &path))
            flows_problem(&p, key, "", "recursive subflow: %s", path.data);
        buf_free(&path);
    }
    json_decref(state);
done:
    json_decref(p.index);
    size_t np = json_array_size(p.list);
    if (np == 0) {
        json_decref(p.list);
        return NULL;
    }
    json_t *first = json_array_get(p.list, 0);
    const char *fid = str_of(first, "node_id"), *ff = str_of(first, "field");
    err_set(e, ERR_INVALID_ARGUMENT, "%zu problem%s in flows; first: %s%s%s%s%s", np,
            np == 1 ? "" : "s", *fid ? "node " : "", fid, *ff ? " field " : "", ff,
            "" /* keep the format simple */);
    size_t l = strlen(e->message);
    snprintf(e->message + l, sizeof e->message - l, ": %s", str_of(first, "message"));
    return p.list;
}

/* ---- building a runnable set ---- */

static char *xstrcat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = xmalloc(la + lb + lc + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

typedef struct {
    flows_set_t *s;
    json_t *byid;  /* doc: id -> node object */
    json_t *index; /* set-unique id -> integer position in s->nodes */
} build_t;

static flows_flow_t *new_flow(flows_set_t *s, const char *id, const char *name)
{
    flows_flow_t *f = xcalloc(1, sizeof *f);
    f->id = xstrdup(id);
    f->name = xstrdup(name ? name : "");
    if (s->nflows == s->fcap) {
        s->fcap = s->fcap ? s->fcap * 2 : 8;
        s->flows = xrealloc(s->flows, (size_t)s->fcap * sizeof *s->flows);
    }
    s->flows[s->nflows++] = f;
    return f;
}

static flows_node_t *new_node(build_t *b, const char *id, const char *orig, json_t *cfg,
                              flows_flow_t *flow)
{
    flows_set_t *s = b->s;
    flows_node_t *n = xcalloc(1, sizeof *n);
    n->id = xstrdup(id);
    n->orig_id = xstrdup(orig);
    n->cfg = json_incref(cfg);
    n->set = s;
    n->flow = flow;
    n->type_name = str_of(cfg, "type");
    n->type = flows_type_find(n->type_name);
    if (s->nnodes == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->nodes = xrealloc(s->nodes, (size_t)s->cap * sizeof *s->nodes);
    }
    json_object_set_new(b->index, id, json_integer(s->nnodes));
    s->nodes[s->nnodes++] = n;
    if (flow) {
        const char *parent = flow->instance ? flow->instance->path : flow->id;
        n->path = xstrcat3(parent, "/", orig);
    } else
        n->path = xstrdup(id);
    return n;
}

static void port_add(flows_port_t *p, flows_node_t *to)
{
    p->to = xrealloc(p->to, (size_t)(p->n + 1) * sizeof *p->to);
    p->to[p->n++] = to;
}

static flows_node_t *lookup(build_t *b, const char *id)
{
    json_t *ix = json_object_get(b->index, id);
    return ix ? b->s->nodes[json_integer_value(ix)] : NULL;
}

/* A target id as seen from flow f: the instance's copy first, then outer flows, then top. */
static flows_node_t *resolve(build_t *b, flows_flow_t *f, const char *id)
{
    for (; f; f = f->parent) {
        if (!f->instance) break;
        char *full = xstrcat3(f->id, "-", id);
        flows_node_t *n = lookup(b, full);
        free(full);
        if (n) return n;
    }
    return lookup(b, id);
}

static void create_flow_nodes(build_t *b, const char *owner, flows_flow_t *flow,
                              const char *prefix);

static void instantiate(build_t *b, flows_node_t *inst, json_t *def)
{
    flows_flow_t *f = new_flow(b->s, inst->id, str_of(def, "name"));
    f->parent = inst->flow;
    f->instance = inst;
    f->subflow_id = xstrdup(str_of(def, "id"));
    f->subflow_name = xstrdup(str_of(def, "name"));
    f->env = json_array();
    json_t *ie = json_object_get(inst->cfg, "env"), *de = json_object_get(def, "env");
    if (json_is_array(ie)) json_array_extend(f->env, ie);
    if (json_is_array(de)) json_array_extend(f->env, de);
    inst->inner = f;
    create_flow_nodes(b, str_of(def, "id"), f, inst->id);
}

static void create_flow_nodes(build_t *b, const char *owner, flows_flow_t *flow, const char *prefix)
{
    size_t i;
    json_t *n;
    json_array_foreach(b->s->doc, i, n)
    {
        if (strcmp(str_of(n, "z"), owner) != 0) continue;
        const char *type = str_of(n, "type");
        if (is_structural(type) || json_is_true(json_object_get(n, "d"))) continue;
        const char *id = str_of(n, "id");
        char *full = prefix ? xstrcat3(prefix, "-", id) : xstrdup(id);
        flows_node_t *node = new_node(b, full, id, n, flow);
        free(full);
        if (strncmp(type, "subflow:", 8) == 0) {
            json_t *def = json_object_get(b->byid, type + 8);
            if (def) instantiate(b, node, def);
        }
    }
}

static void flow_add(flows_node_t ***arr, int *n, flows_node_t *node)
{
    *arr = xrealloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = node;
}

flows_set_t *flows_set_build(const char *project_id, json_t *doc)
{
    flows_set_t *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    snprintf(s->project_id, sizeof s->project_id, "%s", project_id);
    s->doc = doc;
    build_t b = {.s = s, .byid = json_object(), .index = json_object()};
    size_t i;
    json_t *n;
    json_array_foreach(doc, i, n) json_object_set(b.byid, str_of(n, "id"), n);
    /* config nodes outside any tab */
    json_array_foreach(doc, i, n)
    {
        const char *z = str_of(n, "z"), *type = str_of(n, "type");
        if (*z || is_structural(type) || json_is_true(json_object_get(n, "d"))) continue;
        new_node(&b, str_of(n, "id"), str_of(n, "id"), n, NULL);
    }
    /* tabs */
    json_array_foreach(doc, i, n)
    {
        if (strcmp(str_of(n, "type"), "tab") != 0) continue;
        flows_flow_t *f = new_flow(s, str_of(n, "id"), str_of(n, "label"));
        f->disabled = json_is_true(json_object_get(n, "disabled"));
        json_t *env = json_object_get(n, "env");
        f->env = json_is_array(env) ? json_incref(env) : json_array();
        if (!f->disabled) create_flow_nodes(&b, f->id, f, NULL);
    }
    /* wires */
    for (int k = 0; k < s->nnodes; k++) {
        flows_node_t *node = s->nodes[k];
        json_t *wires = json_object_get(node->cfg, "wires");
        node->nports = json_is_array(wires) ? (int)json_array_size(wires) : 0;
        if (node->nports) node->ports = xcalloc((size_t)node->nports, sizeof *node->ports);
        for (int p = 0; p < node->nports; p++) {
            size_t j;
            json_t *w;
            json_array_foreach(json_array_get(wires, (size_t)p), j, w)
            {
                flows_node_t *to = resolve(&b, node->flow, json_string_value(w));
                if (to && !(to->type && to->type->config_only)) port_add(&node->ports[p], to);
            }
        }
    }
    /* subflow plumbing: inputs, outputs and the status port */
    int base = s->nnodes;
    for (int k = 0; k < base; k++) {
        flows_node_t *inst = s->nodes[k];
        if (!inst->inner) continue;
        json_t *def = json_object_get(b.byid, inst->inner->subflow_id);
        json_t *in = json_array_get(json_object_get(def, "in"), 0), *w;
        size_t j;
        json_array_foreach(json_object_get(in, "wires"), j, w)
        {
            flows_node_t *to = resolve(&b, inst->inner, str_of(w, "id"));
            if (to) port_add(&inst->sf_in, to);
        }
        json_t *outs = json_object_get(def, "out"), *out;
        size_t oi;
        json_array_foreach(outs, oi, out)
        {
            char pid[48];
            snprintf(pid, sizeof pid, "-out%zu", oi);
            char *full = xstrcat3(inst->id, pid, "");
            flows_node_t *proxy = new_node(&b, full, full, def, inst->inner);
            free(full);
            proxy->type = NULL;
            proxy->type_name = "subflow-output";
            proxy->proxy = 1;
            proxy->proxy_port = (int)oi;
            proxy->proxy_instance = inst;
            json_array_foreach(json_object_get(out, "wires"), j, w)
            {
                const char *from = str_of(w, "id");
                int port = (int)json_integer_value(json_object_get(w, "port"));
                if (strcmp(from, inst->inner->subflow_id) == 0) {
                    port_add(&inst->sf_in, proxy);
                    continue;
                }
                flows_node_t *src = resolve(&b, inst->inner, from);
                if (!src || port < 0) continue;
                if (port >= src->nports) {
                    src->ports = xrealloc(src->ports, (size_t)(port + 1) * sizeof *src->ports);
                    memset(src->ports + src->nports, 0,
                           (size_t)(port + 1 - src->nports) * sizeof *src->ports);
                    src->nports = port + 1;
                }
                port_add(&src->ports[port], proxy);
            }
        }
        json_t *st = json_object_get(def, "status");
        if (json_is_object(st)) {
            char *full = xstrcat3(inst->id, "-status", "");
            flows_node_t *proxy = new_node(&b, full, full, def, inst->inner);
            free(full);
            proxy->type = NULL;
            proxy->type_name = "subflow-status";
            proxy->proxy = 2;
            proxy->proxy_instance = inst;
            json_array_foreach(json_object_get(st, "wires"), j, w)
            {
                flows_node_t *src = resolve(&b, inst->inner, str_of(w, "id"));
                int port = (int)json_integer_value(json_object_get(w, "port"));
                if (!src || port < 0) continue;
                if (port >= src->nports) {
                    src->ports = xrealloc(src->ports, (size_t)(port + 1) * sizeof *src->ports);
                    memset(src->ports + src->nports, 0,
                           (size_t)(port + 1 - src->nports) * sizeof *src->ports);
                    src->nports = port + 1;
                }
                port_add(&src->ports[port], proxy);
            }
        }
        /* the instance's own outputs come from its wires (resolved above) */
    }
    /* catch / status / complete registration */
    for (int k = 0; k < s->nnodes; k++) {
        flows_node_t *node = s->nodes[k];
        if (!node->flow || node->proxy) continue;
        if (strcmp(node->type_name, "catch") == 0)
            flow_add(&node->flow->catches, &node->flow->ncatch, node);
        else if (strcmp(node->type_name, "status") == 0)
            flow_add(&node->flow->statuses, &node->flow->nstatus, node);
        else if (strcmp(node->type_name, "complete") == 0) {
            flow_add(&node->flow->completes, &node->flow->ncomplete, node);
            size_t j;
            json_t *v;
            json_array_foreach(json_object_get(node->cfg, "scope"), j, v)
            {
                flows_node_t *t = resolve(&b, node->flow, json_string_value(v));
                if (t) t->watched = 1;
            }
        }
    }
    json_decref(b.byid);
    s->index = b.index;
    return s;
}

flows_node_t *flows_set_find(flows_set_t *s, const char *id)
{
    if (!s || !id) return NULL;
    json_t *ix = json_object_get(s->index, id);
    return ix ? s->nodes[json_integer_value(ix)] : NULL;
}

void flows_set_free(flows_set_t *s)
{
    if (!s) return;
    for (int i = 0; i < s->nnodes; i++) {
        flows_node_t *n = s->nodes[i];
        for (int p = 0; p < n->nports; p++)
            free(n->ports[p].to);
        free(n->ports);
        free(n->sf_in.to);
        json_decref(n->cfg);
        free(n->id);
        free(n->orig_id);
        free(n->path);
        free(n);
    }
    free(s->nodes);
    for (int i = 0; i < s->nflows; i++) {
        flows_flow_t *f = s->flows[i];
        free(f->id);
        free(f->name);
        free(f->subflow_id);
        free(f->subflow_name);
        json_decref(f->env);
        free(f->catches);
        free(f->statuses);
        free(f->completes);
        free(f);
    }
    free(s->flows);
    json_decref(s->index);
    json_decref(s->doc);
    free(s);
}
