/* debug.c (node): the `debug` node. Shows msg.<complete> (default payload), the whole
 * msg (complete "true", targetType "full") on the project's debug stream when `active`
 * and `tosidebar`; `console` also writes it to the server log; `tostatus` sets the node
 * status (statusType auto|counter|msg). The entry's `format` is Node-RED's: string[N],
 * number, boolean, Object, array[N], null, undefined. */
#include "flows/internal.h"
#include "flows/props.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long counter;
} debug_t;

static const char *cstr(json_t *cfg, const char *k)
{
    json_t *v = json_object_get(cfg, k);
    if (json_is_true(v)) return "true";
    if (json_is_false(v)) return "false";
    return json_string_value(v);
}

static void debug_validate(const json_t *cfgc, flows_problems_t *p)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    const char *tt = cstr(cfg, "targetType"), *complete = cstr(cfg, "complete");
    if (tt && strcmp(tt, "jsonata") == 0)
        flows_problem(p, id, "targetType",
                      "JSONata expressions are not supported by Parley (use a function node)");
    else if (complete && strcmp(complete, "true") != 0 && strcmp(complete, "false") != 0 &&
             *complete) {
        err_t e;
        if (flows_path_check(complete, &e) < 0) flows_problem(p, id, "complete", "%s", e.message);
    }
    const char *st = cstr(cfg, "statusType");
    if (st && strcmp(st, "jsonata") == 0)
        flows_problem(p, id, "statusType",
                      "JSONata expressions are not supported by Parley (use a function node)");
}

static size_t js_length(const char *s, size_t bytes, size_t *cut);

static void format_of(json_t *v, char *out, size_t cap)
{
    if (!v)
        snprintf(out, cap, "undefined");
    else if (json_is_string(v)) {
        size_t cut;
        snprintf(out, cap, "string[%zu]",
                 js_length(json_string_value(v), json_string_length(v), &cut));
    } else if (json_is_number(v))
        snprintf(out, cap, "number");
    else if (json_is_boolean(v))
        snprintf(out, cap, "boolean");
    else if (json_is_null(v))
        snprintf(out, cap, "null");
    else if (json_is_array(v))
        snprintf(out, cap, "array[%zu]", json_array_size(v));
    else
        snprintf(out, cap, "Object");
}

#define DEBUG_MAX_LENGTH 1000 /* Node-RED's debugMaxLength */

/* Length in UTF-16 code units, as JavaScript's String.length; *cut gets the byte offset
 * where DEBUG_MAX_LENGTH units end (or the byte length). */
static size_t js_length(const char *s, size_t bytes, size_t *cut)
{
    size_t units = 0;
    *cut = bytes;
    for (size_t i = 0; i < bytes;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        size_t u = len == 4 ? 2 : 1;
        if (units + u > DEBUG_MAX_LENGTH && *cut == bytes) *cut = i;
        units += u;
        i += len;
    }
    return units;
}

/* A copy for display, as Node-RED's encodeObject: strings over 1,000 characters are cut
 * ("..." appended), arrays over 1,000 items become {__enc__, type, data, length}. */
static json_t *shown(json_t *v, int depth)
{
    if (!v) return json_null();
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t cut;
        if (js_length(s, json_string_length(v), &cut) <= DEBUG_MAX_LENGTH) return json_incref(v);
        char *t = malloc(cut + 4);
        memcpy(t, s, cut);
        memcpy(t + cut, "...", 4);
        json_t *out = json_string(t);
        free(t);
        return out ? out : json_string("...");
    }
    if (depth > 64) return json_incref(v);
    if (json_is_array(v)) {
        size_t n = json_array_size(v), k = n > DEBUG_MAX_LENGTH ? DEBUG_MAX_LENGTH : n;
        json_t *a = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append_new(a, shown(json_array_get(v, i), depth + 1));
        if (n <= DEBUG_MAX_LENGTH) return a;
        return json_pack("{s:b,s:s,s:o,s:I}", "__enc__", 1, "type", "array", "data", a, "length",
                         (json_int_t)n);
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) json_object_set_new(o, k, shown(x, depth + 1));
        return o;
    }
    return json_incref(v);
}

static int debug_start(flows_node_t *n, err_t *e)
{
    (void)e;
    flows_node_set_state(n, calloc(1, sizeof(debug_t)));
    return 0;
}

static void debug_stop(flows_node_t *n)
{
    free(flows_node_state(n));
}

static void debug_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    debug_t *st = flows_node_state(n);
    json_t *src = json_object_get(json_object_get(msg, "status"), "source");
    if (src && strcmp(json_string_value(json_object_get(src, "id")) ?: "", n->id) == 0) {
        json_decref(msg);
        return;
    }
    const char *complete = cstr(cfg, "complete"), *tt = cstr(cfg, "targetType");
    if (!complete || !*complete || strcmp(complete, "false") == 0) complete = "payload";
    int whole = strcmp(complete, "true") == 0 || (tt && strcmp(tt, "full") == 0);
    json_t *val = whole ? msg : flows_prop_get(msg, complete);
    json_t *active = json_object_get(cfg, "active"), *side = json_object_get(cfg, "tosidebar");
    int is_active = !active || json_is_null(active) || flows_js_truthy(active);
    int to_side = !side || flows_js_truthy(side);
    if (is_active && to_side) {
        char fmt[48];
        format_of(val, fmt, sizeof fmt);
        json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s}", "node_id", n->id, "name",
                              flows_node_name(n), "type", "debug", "z", n->flow ? n->flow->id : "",
                              "path", n->path, "msg", shown(val, 0), "property",
                              whole ? "msg" : complete, "format", fmt, "level", "debug");
        json_t *topic = json_object_get(msg, "topic");
        if (topic) json_object_set(e, "topic", topic);
        flows_debug_push(n->set->project_id, e);
    }
    if (flows_js_truthy(json_object_get(cfg, "console"))) {
        char *s = flows_js_string(val);
        log_kv(LOG_INFO, "flow debug", "project", n->set->project_id, "node", n->id, "msg", s);
        free(s);
    }
    if (flows_js_truthy(json_object_get(cfg, "tostatus"))) {
        const char *stype = cstr(cfg, "statusType");
        if (stype && strcmp(stype, "counter") == 0) {
            char t[32];
            snprintf(t, sizeof t, "%ld", ++st->counter);
            flows_status(n, "blue", "ring", t);
        } else {
            const char *sv = cstr(cfg, "statusVal");
            json_t *sval =
                stype && strcmp(stype, "msg") == 0 && sv && *sv ? flows_prop_get(msg, sv) : val;
            char *s = flows_js_string(sval), text[40];
            snprintf(text, sizeof text, "%.32s%s", s, strlen(s) > 32 ? "..." : "");
            flows_status(n, "grey", "dot", text);
            free(s);
        }
    }
    json_decref(msg);
}

const flows_node_type_t flows_type_debug = {
    .type = "debug",
    .validate = debug_validate,
    .start = debug_start,
    .input = debug_input,
    .stop = debug_stop,
};
