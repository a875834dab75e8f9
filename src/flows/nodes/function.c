/* function.c: Node-RED's `function` node with a Lua 5.4 body (flows/lua.h). Fields: func,
 * outputs, initialize (On Start), finalize (On Stop), timeout (accepted; the sandbox's
 * instruction budget is the limit), libs (external modules: refused at deploy when not
 * empty). One Lua state per project is shared by the project's function nodes (a
 * refcounted table below), so the memory cap is per project; it is only touched on the
 * project's executor. Semantics follow 10-function.js: returned messages get the input's
 * _msgid, node.send clones, done() is automatic unless the body calls node.done(). */
#include "flows/lua.h"
#include "flows/node.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- one Lua state per project ---- */

typedef struct proj_state {
    char *project;
    flows_lua_t *S;
    int refs;
    struct proj_state *next;
} proj_state_t;

static pthread_mutex_t states_mu = PTHREAD_MUTEX_INITIALIZER;
static proj_state_t *states;

static flows_lua_limits_t limits_from_env(void)
{
    flows_lua_limits_t lim = {0, 0};
    const char *v = getenv("PARLEY_FLOWS_LUA_INSTRUCTIONS");
    if (v && atoll(v) > 0) lim.instr_limit = atoll(v);
    v = getenv("PARLEY_FLOWS_LUA_MEMORY_MB");
    if (v && atoll(v) > 0) lim.mem_limit = (size_t)atoll(v) * 1024 * 1024;
    return lim;
}

static flows_lua_t *state_acquire(const char *project, err_t *e)
{
    pthread_mutex_lock(&states_mu);
    proj_state_t *p = states;
    while (p && strcmp(p->project, project) != 0)
        p = p->next;
    if (!p) {
        flows_lua_limits_t lim = limits_from_env();
        flows_lua_t *S = flows_lua_new(&lim, e);
        p = S ? calloc(1, sizeof *p) : NULL;
        if (p) p->project = strdup(project);
        if (!p || !p->project) {
            if (p) free(p);
            if (S) {
                flows_lua_free(S);
                err_set(e, ERR_INTERNAL, "out of memory");
            }
            pthread_mutex_unlock(&states_mu);
            return NULL;
        }
        p->S = S;
        p->next = states;
        states = p;
    }
    p->refs++;
    pthread_mutex_unlock(&states_mu);
    return p->S;
}

static void state_release(flows_lua_t *S)
{
    pthread_mutex_lock(&states_mu);
    for (proj_state_t **pp = &states; *pp; pp = &(*pp)->next) {
        proj_state_t *p = *pp;
        if (p->S != S) continue;
        if (--p->refs == 0) {
            *pp = p->next;
            flows_lua_free(p->S);
            free(p->project);
            free(p);
        }
        break;
    }
    pthread_mutex_unlock(&states_mu);
}

/* ---- the node ---- */

typedef struct {
    flows_lua_t *S;
    flows_lua_script_t *script;
    int outputs;
    int auto_done;   /* the body does not call node.done() */
    flows_node_t *n; /* for the host callbacks */
    json_t *cur_msg; /* the input of the running call (borrowed), for done and _msgid */
    int done_called;
} fn_state_t;

static int is_blank(const char *s)
{
    if (!s) return 1;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return 0;
    return 1;
}

static const char *cfg_str(const json_t *cfg, const char *key)
{
    const char *s = json_string_value(json_object_get(cfg, key));
    return is_blank(s) ? NULL : s;
}

/* outputs: a number or numeric string >= 0 (default 1); -1 when invalid */
static int cfg_outputs(const json_t *cfg)
{
    json_t *o = json_object_get(cfg, "outputs");
    if (!o || json_is_null(o)) return 1;
    if (json_is_integer(o))
        return json_integer_value(o) >= 0 && json_integer_value(o) <= 64
                   ? (int)json_integer_value(o)
                   : -1;
    if (json_is_real(o)) {
        double d = json_real_value(o);
        return d >= 0 && d <= 64 && d == (int)d ? (int)d : -1;
    }
    if (json_is_string(o)) {
        char *end;
        long v = strtol(json_string_value(o), &end, 10);
        if (end != json_string_value(o) && *end == 0 && v >= 0 && v <= 64) return (int)v;
    }
    return -1;
}

static void fn_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    static const char *const parts[] = {"func", "initialize", "finalize"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(cfg, parts[i]);
        if (v && !json_is_string(v) && !json_is_null(v)) {
            flows_problem(p, id, parts[i], "must be a string of Lua code");
            continue;
        }
        const char *code = cfg_str(cfg, parts[i]);
        char m[400];
        if (code && flows_lua_check(code, parts[i], m, sizeof m) != 0)
            flows_problem(p, id, parts[i], "Lua does not compile: %s", m);
    }
    if (cfg_outputs(cfg) < 0) flows_problem(p, id, "outputs", "must be a number from 0 to 64");
    json_t *libs = json_object_get(cfg, "libs");
    if (libs && json_is_array(libs) && json_array_size(libs) > 0)
        flows_problem(p, id, "libs",
                      "external modules are not supported: the function body is sandboxed Lua");
    else if (libs && !json_is_array(libs) && !json_is_null(libs))
        flows_problem(p, id, "libs", "must be an array");
    json_t *t = json_object_get(cfg, "timeout");
    if (t && !json_is_null(t) && !json_is_number(t) &&
        !(json_is_string(t) &&
          (json_string_length(t) == 0 || strtod(json_string_value(t), NULL) >= 0)))
        flows_problem(p, id, "timeout", "must be a number of seconds");
}

/* Mark and queue messages of one call. v: object (output 1) or array per output. */
static int valid_message(fn_state_t *st, json_t *m)
{
    if (json_is_object(m)) return 1;
    const char *type = json_is_array(m)     ? "Array"
                       : json_is_string(m)  ? "string"
                       : json_is_number(m)  ? "number"
                       : json_is_boolean(m) ? "boolean"
                                            : "object";
    flows_error(st->n, NULL, "Function tried to send a message of type %s", type);
    return 0;
}

static void send_results(fn_state_t *st, json_t *v)
{
    if (!v) return;
    if (json_is_object(v)) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    int outs = st->outputs;
    json_t *ports = json_array();
    json_t *msgid = st->cur_msg ? json_object_get(st->cur_msg, "_msgid") : NULL;
    int count = 0;
    for (int i = 0; i < outs; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!e || json_is_null(e)) {
            json_array_append_new(ports, json_null());
            continue;
        }
        json_t *list = json_is_array(e) ? e : NULL;
        json_t *out = json_array();
        size_t nm = list ? json_array_size(list) : 1;
        for (size_t k = 0; k < nm; k++) {
            json_t *m = list ? json_array_get(list, k) : e;
            if (json_is_null(m)) continue;
            if (!valid_message(st, m)) continue;
            if (msgid)
                json_object_set(m, "_msgid", msgid);
            else if (!json_object_get(m, "_msgid")) {
                json_t *fresh = flows_msg_new();
                json_object_set(m, "_msgid", json_object_get(fresh, "_msgid"));
                json_decref(fresh);
            }
            json_array_append(out, m);
            count++;
        }
        json_array_append_new(ports, out);
    }
    json_decref(v);
    if (count)
        flows_send_ports(st->n, ports);
    else
        json_decref(ports);
}

/* host callbacks */
static void h_send(void *ud, json_t *v)
{
    send_results(ud, v); /* already a copy: node.send clones by nature */
}

static void h_done(void *ud)
{
    fn_state_t *st = ud;
    if (st->cur_msg && !st->done_called) flows_done(st->n, st->cur_msg);
    st->done_called = 1;
}

static void h_log(void *ud, const char *level, const char *text, json_t *msg)
{
    fn_state_t *st = ud;
    if (strcmp(level, "error") == 0) {
        /* node.error(text, msg): with a message, catch nodes get it */
        flows_error(st->n, msg ? json_incref(msg) : NULL, "%s", text);
    } else if (strcmp(level, "warn") == 0) {
        flows_warn(st->n, "%s", text);
    } else {
        flows_log(st->n, level, "%s", text);
    }
}

static void h_status(void *ud, json_t *s)
{
    fn_state_t *st = ud;
    json_t *text = json_object_get(s, "text");
    char *t = NULL;
    if (text && !json_is_string(text)) t = json_dumps(text, JSON_ENCODE_ANY | JSON_COMPACT);
    flows_status(st->n, json_string_value(json_object_get(s, "fill")),
                 json_string_value(json_object_get(s, "shape")), t ? t : json_string_value(text));
    free(t);
}

static json_t *h_ctx_get(void *ud, const char *scope, const char *key)
{
    return flows_context_get(((fn_state_t *)ud)->n, scope, key);
}

static int h_ctx_set(void *ud, const char *scope, const char *key, json_t *v, err_t *e)
{
    if (flows_context_set(((fn_state_t *)ud)->n, scope, key, v) != 0)
        return err_set(e, ERR_INTERNAL, "context store error");
    return 0;
}

static json_t *h_env_get(void *ud, const char *name)
{
    return flows_env_value(((fn_state_t *)ud)->n, name);
}

static json_t *h_ctx_keys(void *ud, const char *scope)
{
    return flows_context_keys(((fn_state_t *)ud)->n, scope);
}

static flows_lua_host_t host_for(fn_state_t *st)
{
    flows_lua_host_t h = {st,        h_send,    h_done,    h_log,     h_status,
                          h_ctx_get, h_ctx_set, h_env_get, h_ctx_keys};
    return h;
}

static int fn_start(flows_node_t *n, err_t *e)
{
    json_t *cfg = flows_node_config(n);
    fn_state_t *st = calloc(1, sizeof *st);
    if (!st) return err_set(e, ERR_INTERNAL, "out of memory");
    st->n = n;
    st->outputs = cfg_outputs(cfg);
    if (st->outputs < 0) st->outputs = 1;
    const char *func = cfg_str(cfg, "func");
    st->auto_done = !(func && strstr(func, "node.done("));
    st->S = state_acquire(flows_node_project(n), e);
    if (!st->S) {
        free(st);
        return -1;
    }
    st->script = flows_lua_script_new(st->S, flows_node_id(n), flows_node_name(n), func,
                                      cfg_str(cfg, "initialize"), cfg_str(cfg, "finalize"), e);
    if (!st->script) {
        state_release(st->S);
        free(st);
        return -1;
    }
    flows_node_set_state(n, st);
    if (flows_lua_script_has(st->script, FLOWS_LUA_INIT)) {
        flows_lua_host_t h = host_for(st);
        json_t *out = NULL;
        err_t re = {0};
        if (flows_lua_script_run(st->script, &h, FLOWS_LUA_INIT, NULL, &out, &re) != 0)
            flows_error(n, NULL, "On Start: %s", re.message);
        json_decref(out);
    }
    return 0;
}

static void fn_input(flows_node_t *n, json_t *msg)
{
    fn_state_t *st = flows_node_state(n);
    if (!st) {
        json_decref(msg);
        return;
    }
    flows_lua_host_t h = host_for(st);
    st->cur_msg = msg;
    st->done_called = 0;
    json_t *out = NULL;
    err_t e = {0};
    int rc = flows_lua_script_run(st->script, &h, FLOWS_LUA_FUNC, msg, &out, &e);
    if (rc != 0) {
        st->cur_msg = NULL;
        flows_error(n, msg, "%s", e.message); /* catch nodes get it; counts as done */
        return;
    }
    send_results(st, out);
    if (st->auto_done && !st->done_called) flows_done(n, msg);
    st->cur_msg = NULL;
    json_decref(msg);
}

static void fn_stop(flows_node_t *n)
{
    fn_state_t *st = flows_node_state(n);
    if (!st) return;
    if (flows_lua_script_has(st->script, FLOWS_LUA_FINAL)) {
        flows_lua_host_t h = host_for(st);
        json_t *out = NULL;
        err_t e = {0};
        if (flows_lua_script_run(st->script, &h, FLOWS_LUA_FINAL, NULL, &out, &e) != 0)
            flows_error(n, NULL, "On Stop: %s", e.message);
        json_decref(out);
    }
    flows_lua_script_free(st->script);
    state_release(st->S);
    free(st);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_function = {
    .type = "function",
    .validate = fn_validate,
    .start = fn_start,
    .input = fn_input,
    .stop = fn_stop,
    .calls_done = 1,
};
