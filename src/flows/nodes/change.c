/* change.c: the `change` node. Applies `rules` [{t, p, pt, to, tot, from, fromt, dc}] in
 * order: set (p = to), change (search and replace in a string: fromt str (literal,
 * every occurrence) or re (regular expression, global); num/bool match exactly), delete,
 * move (to = p, then delete p). Targets pt msg|flow|global; values tot
 * msg|flow|global|str|num|bool|json|bin|date|env. Legacy single-rule nodes
 * (action/property/from/to/reg) are read as one rule. */
#include "flows/node.h"
#include "flows/props.h"

#include "base/buf.h"

#include <stdlib.h>
#include <string.h>

static const char *const to_types[] = {"msg",  "flow", "global", "str", "num", "bool",
                                       "json", "bin",  "date",   "env", NULL};
static const char *const from_types[] = {"msg",  "flow", "global", "str", "num",
                                         "bool", "re",   "env",    NULL};

typedef struct {
    int n;
    flows_re_t **re; /* per rule: compiled `from` for change rules with a literal from */
} ch_t;

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The rules, legacy form folded in (new ref). */
static json_t *rules_of(json_t *cfg)
{
    json_t *rules = json_object_get(cfg, "rules");
    if (json_is_array(rules)) return json_incref(rules);
    const char *action = sget(cfg, "action");
    if (!action) return json_array();
    json_t *r = json_pack("{s:s,s:s}", "t", strcmp(action, "replace") == 0 ? "set" : action, "p",
                          sget(cfg, "property") ?: "");
    if (json_object_get(cfg, "to")) json_object_set(r, "to", json_object_get(cfg, "to"));
    if (strcmp(action, "change") == 0) {
        json_t *from = json_object_get(cfg, "from");
        json_object_set_new(r, "from", from ? json_incref(from) : json_string(""));
        json_t *reg = json_object_get(cfg, "reg");
        if (!reg || json_is_null(reg) || json_is_true(reg))
            json_object_set_new(r, "fromt", json_string("re"));
    }
    return json_pack("[o]", r);
}

/* Node-RED's defaults: pt msg, tot str (or msg for "msg.x"), fromt str. */
static void rule_defaults(json_t *r, const char **pt, const char **tot, const char **fromt,
                          const char **to)
{
    *pt = sget(r, "pt") ?: "msg";
    *to = sget(r, "to");
    *tot = sget(r, "tot");
    if (!*tot) {
        if (*to && strncmp(*to, "msg.", 4) == 0 && strcmp(sget(r, "t") ?: "", "set") == 0) {
            *to += 4;
            *tot = "msg";
        } else
            *tot = "str";
    }
    *fromt = sget(r, "fromt") ?: (json_is_true(json_object_get(r, "re")) ? "re" : "str");
}

static char *val_text(json_t *r, const char *k)
{
    json_t *v = json_object_get(r, k);
    return v ? flows_js_string(v) : strdup("");
}

/* Escape a literal for PCRE2 (as Node-RED's fromRE for str). */
static char *re_escape(const char *s)
{
    buf_t b = {0};
    for (; *s; s++) {
        if (strchr("-[]{}()*+?.,\\^$|#", *s) || *s == ' ' || *s == '\t' || *s == '\n')
            buf_append(&b, "\\", 1);
        buf_append(&b, s, 1);
    }
    return buf_steal(&b);
}

static void change_validate(const json_t *cfgc, flows_problems_t *p)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    json_t *rules = json_object_get(cfg, "rules");
    if (rules && !json_is_array(rules)) {
        flows_problem(p, id, "rules", "must be an array");
        return;
    }
    json_t *all = rules_of(cfg);
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        char f[64], pf[64], ptf[64], tof[64], totf[64], ff[64], ftf[64];
        snprintf(f, sizeof f, "rules[%zu].t", i);
        snprintf(pf, sizeof pf, "rules[%zu].p", i);
        snprintf(ptf, sizeof ptf, "rules[%zu].pt", i);
        snprintf(tof, sizeof tof, "rules[%zu].to", i);
        snprintf(totf, sizeof totf, "rules[%zu].tot", i);
        snprintf(ff, sizeof ff, "rules[%zu].from", i);
        snprintf(ftf, sizeof ftf, "rules[%zu].fromt", i);
        const char *t = sget(r, "t");
        if (!t ||
            (strcmp(t, "set") && strcmp(t, "change") && strcmp(t, "delete") && strcmp(t, "move"))) {
            flows_problem(p, id, f, "rule type must be set, change, delete or move");
            continue;
        }
        const char *pt, *tot, *fromt, *to;
        rule_defaults(r, &pt, &tot, &fromt, &to);
        const char *const targets[] = {"msg", "flow", "global", NULL};
        const char *prop = sget(r, "p");
        if (!prop || !*prop)
            flows_problem(p, id, pf, "missing property to %s", t);
        else
            flows_typed_check(p, id, pf, ptf, pt, prop, targets);
        if (strcmp(t, "set") == 0 || strcmp(t, "change") == 0) {
            char *tv = to ? strdup(to) : val_text(r, "to");
            flows_typed_check(p, id, tof, totf, tot, tv, to_types);
            free(tv);
        } else if (strcmp(t, "move") == 0) {
            const char *tt = sget(r, "tot") ?: "msg";
            if (!to || !*to)
                flows_problem(p, id, tof, "missing property to move to");
            else
                flows_typed_check(p, id, tof, totf, tt, to, targets);
        }
        if (strcmp(t, "change") == 0) {
            char *fv = val_text(r, "from");
            flows_typed_check(p, id, ff, ftf, fromt, fv, from_types);
            free(fv);
        }
    }
    json_decref(all);
}

static int change_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *rules = rules_of(flows_node_config(n));
    ch_t *st = calloc(1, sizeof *st);
    st->n = (int)json_array_size(rules);
    st->re = calloc((size_t)st->n + 1, sizeof *st->re);
    for (int i = 0; i < st->n; i++) {
        json_t *r = json_array_get(rules, (size_t)i);
        const char *pt, *tot, *fromt, *to;
        rule_defaults(r, &pt, &tot, &fromt, &to);
        if (strcmp(sget(r, "t") ?: "", "change") != 0) continue;
        if (strcmp(fromt, "msg") == 0 || strcmp(fromt, "flow") == 0 ||
            strcmp(fromt, "global") == 0 || strcmp(fromt, "env") == 0)
            continue;
        char *fv = val_text(r, "from");
        char *pat = strcmp(fromt, "re") == 0 ? strdup(fv) : re_escape(fv);
        st->re[i] = flows_re_new(pat, 0, NULL);
        free(pat);
        free(fv);
    }
    json_decref(rules);
    flows_node_set_state(n, st);
    return 0;
}

static void change_stop(flows_node_t *n)
{
    ch_t *st = flows_node_state(n);
    if (!st) return;
    for (int i = 0; i < st->n; i++)
        flows_re_free(st->re[i]);
    free(st->re);
    free(st);
}

static json_t *get_target(flows_node_t *n, json_t *msg, const char *type, const char *path)
{
    if (strcmp(type, "msg") == 0) {
        json_t *v = flows_prop_get(msg, path);
        return v ? json_incref(v) : NULL;
    }
    return flows_context_get(n, type, path);
}

/* Apply one change rule to current (a string/number/bool); returns new ref or NULL (no change). */
static json_t *do_change(ch_t *st, int i, json_t *cur, json_t *value, const char *fromt,
                         json_t *fromv, const char *tot)
{
    if (json_is_string(cur)) {
        const char *s = json_string_value(cur);
        int exact_kind = !strcmp(fromt, "num") || !strcmp(fromt, "bool") || !strcmp(fromt, "str");
        char *fs = flows_js_string(fromv);
        if (exact_kind && strcmp(s, fs) == 0) {
            free(fs);
            return json_incref(value);
        }
        flows_re_t *re = st->re[i], *tmp = NULL;
        if (!re) {
            if (json_is_string(fromv)) {
                char *pat = re_escape(fs);
                tmp = re = flows_re_new(pat, 0, NULL);
                free(pat);
            } else if (json_is_number(fromv) || json_is_boolean(fromv)) {
                free(fs);
                return NULL;
            }
        }
        free(fs);
        if (!re) return NULL;
        char *repl = flows_js_string(value);
        char *out = flows_re_replace(re, s, repl, 1);
        json_t *res;
        if (strcmp(tot, "bool") == 0 && strcmp(out, repl) == 0)
            res = json_incref(value);
        else
            res = json_string(out);
        free(out);
        free(repl);
        flows_re_free(tmp);
        return res;
    }
    if (json_is_number(cur) && (!strcmp(fromt, "num") || json_is_number(fromv))) {
        double a, b;
        if (flows_js_number(cur, &a) && flows_js_number(fromv, &b) && a == b)
            return json_incref(value);
    }
    if (json_is_boolean(cur) && (!strcmp(fromt, "bool") || json_is_boolean(fromv))) {
        char *a = flows_js_string(cur), *b = flows_js_string(fromv);
        int eq = strcmp(a, b) == 0;
        free(a);
        free(b);
        if (eq) return json_incref(value);
    }
    return NULL;
}

static void change_input(flows_node_t *n, json_t *msg)
{
    ch_t *st = flows_node_state(n);
    json_t *rules = rules_of(flows_node_config(n));
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        const char *t = sget(r, "t"), *pt, *tot, *fromt, *to;
        rule_defaults(r, &pt, &tot, &fromt, &to);
        const char *prop = sget(r, "p") ?: "";
        err_t e;
        if (strcmp(t, "delete") == 0) {
            flows_target_delete(n, msg, pt, prop);
            continue;
        }
        if (strcmp(t, "move") == 0) {
            const char *tt = sget(r, "tot") ?: "msg";
            if (strcmp(pt, tt) == 0 && strcmp(prop, to ?: "") == 0) continue;
            json_t *v = get_target(n, msg, pt, prop);
            flows_target_delete(n, msg, pt, prop);
            if (v && flows_target_set(n, msg, tt, to, v, &e) < 0) {
                flows_error(n, msg, "%s", e.message);
                json_decref(rules);
                return;
            }
            continue;
        }
        json_t *value = NULL;
        char *tv = to ? strdup(to) : val_text(r, "to");
        int rc = flows_typed_eval(n, msg, tot, tv, &value, &e);
        free(tv);
        if (rc < 0) {
            flows_error(n, msg, "%s", e.message);
            json_decref(rules);
            return;
        }
        if (strcmp(t, "set") == 0) {
            if (!value)
                flows_target_delete(n, msg, pt, prop); /* set to undefined */
            else if (flows_target_set(n, msg, pt, prop, value, &e) < 0) {
                flows_warn(n, "cannot set property %s: %s", prop, e.message);
            }
            continue;
        }
        /* change */
        json_t *fromv = NULL;
        if (!strcmp(fromt, "msg") || !strcmp(fromt, "flow") || !strcmp(fromt, "global") ||
            !strcmp(fromt, "env")) {
            char *fv = val_text(r, "from");
            flows_typed_eval(n, msg, fromt, fv, &fromv, &e);
            free(fv);
            if (!json_is_string(fromv) && !json_is_number(fromv) && !json_is_boolean(fromv)) {
                flows_error(n, msg, "Invalid 'from' property: unsupported type: %s",
                            fromv ? "object" : "undefined");
                json_decref(fromv);
                json_decref(value);
                json_decref(rules);
                return;
            }
        } else {
            char *fv = val_text(r, "from");
            if (strcmp(fromt, "num") == 0)
                flows_typed_eval(n, msg, "num", fv, &fromv, &e);
            else
                fromv = json_string(fv);
            free(fv);
        }
        json_t *cur = get_target(n, msg, pt, prop);
        json_t *res = cur && value ? do_change(st, (int)i, cur, value, fromt, fromv, tot) : NULL;
        if (res) flows_target_set(n, msg, pt, prop, res, &e);
        json_decref(cur);
        json_decref(fromv);
        json_decref(value);
    }
    json_decref(rules);
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_change = {
    .type = "change",
    .validate = change_validate,
    .start = change_start,
    .input = change_input,
    .stop = change_stop,
};
