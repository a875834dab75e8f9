/* switch.c: the `switch` node. Evaluates `property` (propertyType msg|flow|global|env|...)
 * against `rules` [{t, v, vt, v2, v2t, case}] with Node-RED's operators and JavaScript's
 * loose comparisons; output i gets the msg when rule i matches (`checkall` "true": every
 * matching rule; "false": the first). Regular expressions are compiled at start. Rule
 * types: eq neq lt lte gt gte btwn cont regex true false null nnull istype empty nempty
 * head tail index hask else (jsonata_exp is refused at deploy). `repair` is ignored and
 * `tail` uses msg.parts.count as it is (no buffering of a sequence). */
#include "flows/node.h"
#include "flows/props.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int nrules;
    flows_re_t **re; /* per rule, regex rules only */
    json_t *prev;    /* previous property value (vt "prev") */
} sw_t;

static const char *const rule_types[] = {
    "eq",   "neq",   "lt",     "lte",   "gt",     "gte",  "btwn", "cont",  "regex", "true", "false",
    "null", "nnull", "istype", "empty", "nempty", "head", "tail", "index", "hask",  "else", NULL};

static const char *const value_types[] = {"msg",  "flow", "global", "str",  "num", "env",
                                          "prev", "json", "bool",   "date", "re",  NULL};

static const char *rule_str(json_t *rule, const char *k)
{
    return json_string_value(json_object_get(rule, k));
}

/* A rule value as text (Node-RED keeps numbers as given). Caller frees. */
static char *rule_val(json_t *rule, const char *k)
{
    json_t *v = json_object_get(rule, k);
    if (!v) return NULL;
    return flows_js_string(v);
}

/* Node-RED's default value type: num when the value is numeric, else str. */
static const char *rule_vt(json_t *rule, const char *k, const char *vk)
{
    const char *t = rule_str(rule, k);
    if (t && *t) return t;
    json_t *v = json_object_get(rule, vk);
    double d;
    if (v && flows_js_number(v, &d)) return "num";
    return "str";
}

static int needs_value(const char *t)
{
    return strcmp(t, "true") && strcmp(t, "false") && strcmp(t, "null") && strcmp(t, "nnull") &&
           strcmp(t, "empty") && strcmp(t, "nempty") && strcmp(t, "else");
}

static void switch_validate(const json_t *cfgc, flows_problems_t *p)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    const char *pt = json_string_value(json_object_get(cfg, "propertyType"));
    json_t *prop = json_object_get(cfg, "property");
    if (!pt || strcmp(pt, "msg") == 0) {
        if (!json_is_string(prop) || !json_string_length(prop))
            flows_problem(p, id, "property", "missing required property to test");
        else
            flows_typed_check(p, id, "property", "propertyType", "msg", json_string_value(prop),
                              NULL);
    } else
        flows_typed_check(p, id, "property", "propertyType", pt, json_string_value(prop), NULL);
    json_t *rules = json_object_get(cfg, "rules");
    if (rules && !json_is_array(rules)) {
        flows_problem(p, id, "rules", "must be an array");
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        char f[64], vf[64], vtf[64];
        snprintf(f, sizeof f, "rules[%zu].t", i);
        snprintf(vf, sizeof vf, "rules[%zu].v", i);
        snprintf(vtf, sizeof vtf, "rules[%zu].vt", i);
        const char *t = rule_str(r, "t");
        if (!t) {
            flows_problem(p, id, f, "missing rule type");
            continue;
        }
        if (strcmp(t, "jsonata_exp") == 0) {
            flows_problem(p, id, f,
                          "JSONata expressions are not supported by Parley (use a function node)");
            continue;
        }
        int known = 0;
        for (int k = 0; rule_types[k]; k++)
            known |= strcmp(rule_types[k], t) == 0;
        if (!known) {
            flows_problem(p, id, f, "unknown rule type '%s'", t);
            continue;
        }
        if (!needs_value(t) || strcmp(t, "istype") == 0) continue;
        const char *vt = rule_vt(r, "vt", "v");
        char *v = rule_val(r, "v");
        if (strcmp(t, "regex") == 0 && strcmp(vt, "str") != 0 && strcmp(vt, "re") != 0 &&
            strcmp(vt, "num") != 0)
            ; /* dynamic pattern: checked when used */
        else if (strcmp(t, "regex") == 0) {
            err_t e;
            flows_re_t *re = flows_re_new(v ? v : "", json_is_true(json_object_get(r, "case")), &e);
            if (!re) flows_problem(p, id, vf, "%s", e.message);
            flows_re_free(re);
        } else if (strcmp(vt, "prev") != 0)
            flows_typed_check(p, id, vf, vtf, vt, v, value_types);
        free(v);
        if (strcmp(t, "btwn") == 0 || strcmp(t, "index") == 0) {
            char vf2[64], vtf2[64];
            snprintf(vf2, sizeof vf2, "rules[%zu].v2", i);
            snprintf(vtf2, sizeof vtf2, "rules[%zu].v2t", i);
            const char *v2t = rule_vt(r, "v2t", "v2");
            char *v2 = rule_val(r, "v2");
            if (strcmp(v2t, "prev") != 0) flows_typed_check(p, id, vf2, vtf2, v2t, v2, value_types);
            free(v2);
        }
    }
}

/* ---- JavaScript comparisons ---- */

static int is_prim(const json_t *v)
{
    return v && !json_is_object(v) && !json_is_array(v);
}

/* a == b (loose). */
static int js_eq(const json_t *a, const json_t *b)
{
    int an = !a || json_is_null(a), bn = !b || json_is_null(b);
    if (an || bn) return an && bn;
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b)) == 0;
    if (is_prim(a) && is_prim(b)) {
        double x, y;
        if (!flows_js_number(a, &x) || !flows_js_number(b, &y)) return 0;
        return x == y;
    }
    if (!is_prim(a) && !is_prim(b)) return a == b; /* identity */
    /* object vs primitive: compare the object's string form */
    const json_t *o = is_prim(a) ? b : a, *pv = is_prim(a) ? a : b;
    char *s = flows_js_string(o);
    json_t *sj = json_string(s);
    free(s);
    int r = js_eq(sj, pv);
    json_decref(sj);
    return r;
}

/* a < b etc.: -2 when incomparable (NaN), else -1/0/1. */
static int js_cmp(const json_t *a, const json_t *b)
{
    if (json_is_string(a) && json_is_string(b)) {
        int c = strcmp(json_string_value(a), json_string_value(b));
        return c < 0 ? -1 : c > 0;
    }
    double x, y;
    if (!a || !b || !flows_js_number(a, &x) || !flows_js_number(b, &y)) return -2;
    return x < y ? -1 : x > y;
}

static int js_empty(const json_t *a, int *out)
{
    if (json_is_string(a))
        *out = json_string_length(a) == 0;
    else if (json_is_array(a))
        *out = json_array_size(a) == 0;
    else if (json_is_object(a))
        *out = json_object_size(a) == 0;
    else
        return 0;
    return 1;
}

static int js_istype(const json_t *a, const char *t)
{
    if (strcmp(t, "array") == 0) return json_is_array(a);
    if (strcmp(t, "buffer") == 0) return 0;
    if (strcmp(t, "null") == 0) return a && json_is_null(a);
    if (strcmp(t, "json") == 0) {
        if (!json_is_string(a)) return 0;
        json_t *j = json_loads(json_string_value(a), JSON_DECODE_ANY, NULL);
        json_decref(j);
        return j != NULL;
    }
    if (strcmp(t, "number") == 0) return json_is_number(a);
    if (strcmp(t, "string") == 0) return json_is_string(a);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(a);
    if (strcmp(t, "object") == 0) return json_is_object(a);
    if (strcmp(t, "undefined") == 0) return a == NULL;
    return 0;
}

static int parts_num(json_t *msg, const char *k, double *out)
{
    return flows_js_number(json_object_get(json_object_get(msg, "parts"), k), out);
}

static int eval_value(flows_node_t *n, sw_t *st, json_t *msg, json_t *rule, const char *vk,
                      const char *vtk, json_t **out)
{
    const char *vt = rule_vt(rule, vtk, vk);
    *out = NULL;
    if (strcmp(vt, "prev") == 0) {
        *out = st->prev ? json_incref(st->prev) : NULL;
        return 0;
    }
    char *v = rule_val(rule, vk);
    err_t e;
    int rc = flows_typed_eval(n, msg, vt, v ? v : "", out, &e);
    free(v);
    return rc < 0 ? -1 : 0;
}

/* 1 match, 0 no match. */
static int apply_rule(flows_node_t *n, sw_t *st, json_t *msg, json_t *prop, int i, json_t *rule,
                      int *elseflag)
{
    const char *t = rule_str(rule, "t");
    if (strcmp(t, "else") == 0) return *elseflag;
    if (strcmp(t, "true") == 0) return json_is_true(prop);
    if (strcmp(t, "false") == 0) return json_is_false(prop);
    if (strcmp(t, "null") == 0) return !prop || json_is_null(prop);
    if (strcmp(t, "nnull") == 0) return prop && !json_is_null(prop);
    int em;
    if (strcmp(t, "empty") == 0) return js_empty(prop, &em) && em;
    if (strcmp(t, "nempty") == 0) return js_empty(prop, &em) && !em;
    if (strcmp(t, "istype") == 0) return js_istype(prop, rule_str(rule, "v") ?: "");
    json_t *v1 = NULL, *v2 = NULL;
    eval_value(n, st, msg, rule, "v", "vt", &v1);
    int r = 0;
    if (strcmp(t, "eq") == 0)
        r = js_eq(prop, v1);
    else if (strcmp(t, "neq") == 0)
        r = !js_eq(prop, v1);
    else if (strcmp(t, "lt") == 0)
        r = js_cmp(prop, v1) == -1;
    else if (strcmp(t, "lte") == 0)
        r = js_cmp(prop, v1) == -1 || js_cmp(prop, v1) == 0;
    else if (strcmp(t, "gt") == 0)
        r = js_cmp(prop, v1) == 1;
    else if (strcmp(t, "gte") == 0)
        r = js_cmp(prop, v1) == 1 || js_cmp(prop, v1) == 0;
    else if (strcmp(t, "btwn") == 0) {
        eval_value(n, st, msg, rule, "v2", "v2t", &v2);
        int a = js_cmp(prop, v1), b = js_cmp(prop, v2);
        r = (a >= 0 && b != -2 && b <= 0) || (a != -2 && a <= 0 && b >= 0);
    } else if (strcmp(t, "cont") == 0) {
        char *s = flows_js_string(prop), *needle = flows_js_string(v1);
        r = strstr(s, needle) != NULL;
        free(s);
        free(needle);
    } else if (strcmp(t, "regex") == 0) {
        char *s = flows_js_string(prop);
        if (st->re[i])
            r = flows_re_test(st->re[i], s);
        else {
            char *pat = flows_js_string(v1);
            err_t e;
            flows_re_t *re = flows_re_new(pat, json_is_true(json_object_get(rule, "case")), &e);
            free(pat);
            if (re)
                r = flows_re_test(re, s);
            else
                flows_warn(n, "%s", e.message);
            flows_re_free(re);
        }
        free(s);
    } else if (strcmp(t, "hask") == 0) {
        char *k = flows_js_string(v1);
        r = json_is_object(prop) && json_object_get(prop, k);
        if (json_is_array(prop)) {
            char *end;
            long idx = strtol(k, &end, 10);
            r = !*end && *k && idx >= 0 && (size_t)idx < json_array_size(prop);
        }
        free(k);
    } else if (strcmp(t, "head") == 0 || strcmp(t, "tail") == 0 || strcmp(t, "index") == 0) {
        double idx, count, a, b;
        if (parts_num(msg, "index", &idx) && flows_js_number(v1, &a)) {
            if (strcmp(t, "head") == 0)
                r = idx < a;
            else if (strcmp(t, "tail") == 0)
                r = parts_num(msg, "count", &count) && count - a <= idx;
            else {
                eval_value(n, st, msg, rule, "v2", "v2t", &v2);
                r = flows_js_number(v2, &b) && a <= idx && idx <= b;
            }
        }
    }
    json_decref(v1);
    json_decref(v2);
    return r;
}

static int switch_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *rules = json_object_get(flows_node_config(n), "rules");
    sw_t *st = calloc(1, sizeof *st);
    st->nrules = (int)json_array_size(rules);
    st->re = calloc((size_t)st->nrules + 1, sizeof *st->re);
    for (int i = 0; i < st->nrules; i++) {
        json_t *r = json_array_get(rules, (size_t)i);
        const char *t = rule_str(r, "t"), *vt = rule_vt(r, "vt", "v");
        if (t && strcmp(t, "regex") == 0 &&
            (strcmp(vt, "str") == 0 || strcmp(vt, "re") == 0 || strcmp(vt, "num") == 0)) {
            char *v = rule_val(r, "v");
            st->re[i] = flows_re_new(v ? v : "", json_is_true(json_object_get(r, "case")), NULL);
            free(v);
        }
    }
    flows_node_set_state(n, st);
    return 0;
}

static void switch_stop(flows_node_t *n)
{
    sw_t *st = flows_node_state(n);
    if (!st) return;
    for (int i = 0; i < st->nrules; i++)
        flows_re_free(st->re[i]);
    free(st->re);
    json_decref(st->prev);
    free(st);
}

static void switch_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    sw_t *st = flows_node_state(n);
    json_t *prop = NULL;
    err_t e;
    const char *pt = json_string_value(json_object_get(cfg, "propertyType"));
    const char *pv = json_string_value(json_object_get(cfg, "property"));
    if (!pt || strcmp(pt, "msg") == 0) { /* by reference, as Node-RED (no copy per message) */
        prop = flows_prop_get(msg, pv ? pv : "payload");
        if (prop) json_incref(prop);
    } else if (flows_typed_eval(n, msg, pt, pv ? pv : "payload", &prop, &e) < 0)
        prop = NULL;
    json_t *rules = json_object_get(cfg, "rules");
    json_t *cka = json_object_get(cfg, "checkall");
    int checkall = !cka || json_is_true(cka) ||
                   (json_is_string(cka) && strcmp(json_string_value(cka), "false") != 0);
    int elseflag = 1, sent = 0, n_rules = (int)json_array_size(rules);
    int *match = calloc((size_t)n_rules + 1, sizeof *match);
    for (int i = 0; i < n_rules; i++) {
        if (apply_rule(n, st, msg, prop, i, json_array_get(rules, (size_t)i), &elseflag)) {
            match[i] = 1;
            elseflag = 0;
            if (!checkall) break;
        }
    }
    json_decref(st->prev);
    st->prev = prop;
    for (int i = 0; i < n_rules; i++) {
        if (!match[i]) continue;
        flows_send(n, i, sent++ ? flows_msg_clone(msg) : json_incref(msg));
    }
    free(match);
    json_decref(msg);
}

const flows_node_type_t flows_type_switch = {
    .type = "switch",
    .validate = switch_validate,
    .start = switch_start,
    .input = switch_input,
    .stop = switch_stop,
};
