/* link.c: `link in`, `link out` (mode "link": to every listed link in, any tab; mode
 * "return": back to the link call that sent the msg) and `link call` (static target
 * links[0] or dynamic msg.target: a link in id or name; `timeout` seconds, default 30,
 * then a catchable "timeout" error with the msg as it entered). The call stack travels in
 * msg._linkSource [{id, node}] as in Node-RED; the return reaches the call node through the
 * executor queue with a private `_linkReturn` marker that the call node removes. */
#include "flows/internal.h"
#include "flows/props.h"

#include "base/ulid.h"

#include <stdlib.h>
#include <string.h>

/* ---- link in ---- */

static void link_in_input(flows_node_t *n, json_t *msg)
{
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_link_in = {.type = "link in", .input = link_in_input};

/* ---- link out ---- */

static void link_out_validate(const json_t *cfgc, flows_problems_t *p)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    const char *mode = json_string_value(json_object_get(cfg, "mode"));
    if (mode && strcmp(mode, "link") != 0 && strcmp(mode, "return") != 0)
        flows_problem(p, id, "mode", "mode must be link or return");
    json_t *links = json_object_get(cfg, "links");
    if (links && !json_is_array(links)) {
        flows_problem(p, id, "links", "must be an array of link in node ids");
        return;
    }
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l)
    {
        char f[48];
        snprintf(f, sizeof f, "links[%zu]", i);
        /* a link to a node that is not there is ignored, as Node-RED (exports often carry
           links to deleted nodes) */
        if (!json_is_string(l)) flows_problem(p, id, f, "must be a node id");
    }
}

static void link_out_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    const char *mode = json_string_value(json_object_get(cfg, "mode"));
    if (mode && strcmp(mode, "return") == 0) {
        json_t *stack = json_object_get(msg, "_linkSource");
        size_t depth = json_array_size(stack);
        if (!depth) {
            flows_warn(n, "link out (return): the message did not come from a link call");
            json_decref(msg);
            return;
        }
        json_t *top = json_incref(json_array_get(stack, depth - 1));
        json_array_remove(stack, depth - 1);
        flows_node_t *call =
            flows_set_find(n->set, json_string_value(json_object_get(top, "node")));
        if (!call) {
            json_decref(top);
            json_decref(msg);
            return;
        }
        json_object_set(msg, "_linkReturn", json_object_get(top, "id"));
        json_decref(top);
        flows_deliver(call, msg);
        return;
    }
    json_t *links = json_object_get(cfg, "links");
    flows_node_t *targets[64];
    int nt = 0;
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l)
    {
        flows_node_t *t = flows_node_find(n, json_string_value(l));
        if (t && nt < 64 && strcmp(t->type_name, "link in") == 0) targets[nt++] = t;
    }
    for (int k = 1; k < nt; k++)
        flows_deliver(targets[k], flows_msg_clone(msg));
    if (nt)
        flows_deliver(targets[0], msg);
    else
        json_decref(msg);
}

const flows_node_type_t flows_type_link_out = {
    .type = "link out", .validate = link_out_validate, .input = link_out_input};

/* ---- link call ---- */

typedef struct {
    json_t *pending; /* token -> timer id */
} call_t;

typedef struct {
    char token[ULID_LEN + 1];
    json_t *msg; /* as it entered, for the timeout error */
} wait_t;

static void wait_free(void *p)
{
    wait_t *w = p;
    json_decref(w->msg);
    free(w);
}

static void link_call_validate(const json_t *cfgc, flows_problems_t *p)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    const char *lt = json_string_value(json_object_get(cfg, "linkType"));
    json_t *links = json_object_get(cfg, "links");
    const char *target = json_is_string(links) ? json_string_value(links)
                                               : json_string_value(json_array_get(links, 0));
    if (!lt || strcmp(lt, "static") == 0) {
        if (!target || !*target)
            flows_problem(p, id, "links", "missing required link in target");
        else if (!flows_problems_has_node(p, target, "link in"))
            flows_problem(p, id, "links[0]", "link to missing link in node '%s'", target);
    } else if (strcmp(lt, "dynamic") != 0)
        flows_problem(p, id, "linkType", "linkType must be static or dynamic");
    json_t *to = json_object_get(cfg, "timeout");
    double d;
    if (to && !(json_is_string(to) && !json_string_length(to)) &&
        (!flows_js_number(to, &d) || d < 0))
        flows_problem(p, id, "timeout", "timeout must be a number of seconds");
}

static int link_call_start(flows_node_t *n, err_t *e)
{
    (void)e;
    call_t *st = calloc(1, sizeof *st);
    st->pending = json_object();
    flows_node_set_state(n, st);
    return 0;
}

static void link_call_stop(flows_node_t *n)
{
    call_t *st = flows_node_state(n);
    if (!st) return;
    json_decref(st->pending); /* timers are purged by the runtime */
    free(st);
}

static void on_timeout(flows_node_t *n, void *arg)
{
    wait_t *w = arg;
    call_t *st = flows_node_state(n);
    json_object_del(st->pending, w->token);
    json_t *m = w->msg;
    w->msg = NULL;
    wait_free(w);
    flows_error(n, m, "timeout");
}

static flows_node_t *dynamic_target(flows_node_t *n, const char *target)
{
    flows_node_t *t = flows_node_find(n, target);
    if (t && strcmp(t->type_name, "link in") == 0) return t;
    flows_node_t *found = NULL;
    for (int i = 0; i < n->set->nnodes; i++) { /* by name, this flow first */
        flows_node_t *c = n->set->nodes[i];
        if (strcmp(c->type_name, "link in") || strcmp(flows_node_name(c), target)) continue;
        if (c->flow == n->flow) return c;
        if (!c->flow || c->flow->instance) continue;
        if (found) return NULL; /* ambiguous */
        found = c;
    }
    return found;
}

static void link_call_input(flows_node_t *n, json_t *msg)
{
    call_t *st = flows_node_state(n);
    json_t *ret = json_object_get(msg, "_linkReturn");
    if (ret) { /* coming back from a link out (return) */
        char token[64];
        snprintf(token, sizeof token, "%s", json_string_value(ret) ?: "");
        json_object_del(msg, "_linkReturn");
        json_t *stack = json_object_get(msg, "_linkSource");
        if (stack && json_array_size(stack) == 0) json_object_del(msg, "_linkSource");
        json_t *tid = json_object_get(st->pending, token);
        if (!tid) { /* timed out already: Node-RED sends it on anyway */
            flows_send(n, 0, msg);
            return;
        }
        flows_timer_cancel(n, (uint64_t)json_integer_value(tid));
        json_object_del(st->pending, token);
        flows_send(n, 0, msg);
        return;
    }
    json_t *cfg = flows_node_config(n);
    const char *lt = json_string_value(json_object_get(cfg, "linkType"));
    json_t *links = json_object_get(cfg, "links");
    const char *target;
    flows_node_t *t;
    if (lt && strcmp(lt, "dynamic") == 0) {
        target = json_string_value(json_object_get(msg, "target"));
        t = target ? dynamic_target(n, target) : NULL;
    } else {
        target = json_is_string(links) ? json_string_value(links)
                                       : json_string_value(json_array_get(links, 0));
        t = flows_node_find(n, target);
        if (t && strcmp(t->type_name, "link in") != 0) t = NULL;
    }
    if (!t) {
        flows_error(n, msg, "target link-in node '%s' not found", target ? target : "");
        return;
    }
    double secs = 30;
    json_t *to = json_object_get(cfg, "timeout");
    if (to && !(json_is_string(to) && !json_string_length(to)) && !flows_js_number(to, &secs))
        secs = 30;
    wait_t *w = calloc(1, sizeof *w);
    ulid_new(w->token);
    w->msg = flows_msg_clone(msg);
    json_t *stack = json_object_get(msg, "_linkSource");
    if (!json_is_array(stack)) {
        stack = json_array();
        json_object_set_new(msg, "_linkSource", stack);
    }
    json_array_append_new(stack, json_pack("{s:s,s:s}", "id", w->token, "node", n->id));
    char token[ULID_LEN + 1];
    memcpy(token, w->token, sizeof token);
    uint64_t tid = flows_timer(n, (int64_t)(secs * 1000), on_timeout, w, wait_free);
    json_object_set_new(st->pending, token, json_integer((json_int_t)tid));
    flows_deliver(t, msg);
}

const flows_node_type_t flows_type_link_call = {.type = "link call",
                                                .validate = link_call_validate,
                                                .start = link_call_start,
                                                .input = link_call_input,
                                                .stop = link_call_stop};
