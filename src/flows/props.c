/* props.c: msg property paths, typed inputs, JavaScript-like value helpers and PCRE2
 * regular expressions (see props.h). Pure functions over jansson values, except the
 * typed inputs that read context and env through the node services. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "flows/props.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"

#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- paths ---- */

void flows_path_free(flows_path_t *p)
{
    for (int i = 0; i < p->n; i++)
        if (!p->seg[i].is_index) free(p->seg[i].key);
    p->n = 0;
}

static int add_key(flows_path_t *p, const char *s, size_t len, err_t *e)
{
    if (p->n >= FLOWS_PATH_MAX) return err_set(e, ERR_INVALID_ARGUMENT, "property path too deep");
    p->seg[p->n].is_index = 0;
    p->seg[p->n].idx = 0;
    p->seg[p->n].key = strndup(s, len);
    p->n++;
    return 0;
}

int flows_path_parse(const char *expr, flows_path_t *out, err_t *e)
{
    out->n = 0;
    if (!expr || !*expr) return err_set(e, ERR_INVALID_ARGUMENT, "empty property expression");
    size_t i = 0, len = strlen(expr);
    int need_seg = 1; /* at start or after '.' an identifier must follow */
    while (i < len) {
        char c = expr[i];
        if (c == '[') {
            if (need_seg && i != 0) goto bad;
            i++;
            if (expr[i] == '"' || expr[i] == '\'') {
                char q = expr[i++];
                buf_t b = {0};
                while (i < len && expr[i] != q) {
                    if (expr[i] == '\\' && i + 1 < len) i++;
                    buf_append(&b, &expr[i], 1);
                    i++;
                }
                if (i >= len) {
                    buf_free(&b);
                    err_set(e, ERR_INVALID_ARGUMENT, "unterminated string in '%s'", expr);
                    goto fail;
                }
                i++;
                int rc = add_key(out, b.data ? b.data : "", b.len, e);
                buf_free(&b);
                if (rc < 0) goto fail;
            } else if (isdigit((unsigned char)expr[i])) {
                long v = 0;
                while (isdigit((unsigned char)expr[i])) {
                    v = v * 10 + (expr[i] - '0');
                    if (v > 100000000) goto bad;
                    i++;
                }
                if (out->n >= FLOWS_PATH_MAX) goto bad;
                out->seg[out->n].is_index = 1;
                out->seg[out->n].idx = v;
                out->seg[out->n].key = NULL;
                out->n++;
            } else {
                if (strncmp(expr + i, "msg.", 4) == 0) {
                    err_set(e, ERR_INVALID_ARGUMENT,
                            "nested message references ('%s') are not supported", expr);
                    goto fail;
                }
                goto bad;
            }
            if (expr[i] != ']') goto bad;
            i++;
            need_seg = 0;
        } else if (c == '.') {
            if (need_seg) goto bad;
            i++;
            need_seg = 1;
            if (i >= len) goto bad;
        } else {
            if (!need_seg) goto bad;
            size_t start = i;
            while (i < len && expr[i] != '.' && expr[i] != '[') {
                if (expr[i] == ']' || expr[i] == ' ' || expr[i] == '"' || expr[i] == '\'') goto bad;
                i++;
            }
            if (add_key(out, expr + start, i - start, e) < 0) goto fail;
            need_seg = 0;
        }
    }
    if (need_seg) goto bad;
    return 0;
bad:
    err_set(e, ERR_INVALID_ARGUMENT, "invalid property expression '%s' (at character %zu)", expr,
            i + 1);
fail:
    flows_path_free(out);
    return -1;
}

int flows_path_check(const char *expr, err_t *e)
{
    flows_path_t p;
    if (flows_path_parse(expr, &p, e) < 0) return -1;
    flows_path_free(&p);
    return 0;
}

static json_t *seg_get(json_t *cur, const flows_path_t *p, int i)
{
    if (p->seg[i].is_index) {
        if (json_is_array(cur)) return json_array_get(cur, (size_t)p->seg[i].idx);
        if (json_is_object(cur)) {
            char k[32];
            snprintf(k, sizeof k, "%ld", p->seg[i].idx);
            return json_object_get(cur, k);
        }
        return NULL;
    }
    if (json_is_object(cur)) return json_object_get(cur, p->seg[i].key);
    if (json_is_array(cur) && strcmp(p->seg[i].key, "length") == 0) return NULL;
    return NULL;
}

json_t *flows_prop_get(json_t *obj, const char *expr)
{
    flows_path_t p;
    if (flows_path_parse(expr, &p, NULL) < 0) return NULL;
    json_t *cur = obj;
    for (int i = 0; i < p.n && cur; i++)
        cur = seg_get(cur, &p, i);
    flows_path_free(&p);
    return cur;
}

static int seg_put(json_t *cur, const flows_path_t *p, int i, json_t *v, err_t *e)
{
    if (p->seg[i].is_index && json_is_array(cur)) {
        size_t idx = (size_t)p->seg[i].idx;
        while (json_array_size(cur) < idx)
            json_array_append_new(cur, json_null());
        if (idx == json_array_size(cur)) return json_array_append_new(cur, v);
        return json_array_set_new(cur, idx, v);
    }
    if (json_is_object(cur)) {
        if (p->seg[i].is_index) {
            char k[32];
            snprintf(k, sizeof k, "%ld", p->seg[i].idx);
            return json_object_set_new(cur, k, v);
        }
        return json_object_set_new(cur, p->seg[i].key, v);
    }
    json_decref(v);
    return err_set(e, ERR_INVALID_ARGUMENT, "cannot set a property of a %s", jsonx_type_name(cur));
}

int flows_prop_set(json_t *obj, const char *expr, json_t *v, err_t *e)
{
    flows_path_t p;
    if (!v) v = json_null();
    if (flows_path_parse(expr, &p, e) < 0) {
        json_decref(v);
        return -1;
    }
    json_t *cur = obj;
    int rc = 0;
    for (int i = 0; i < p.n - 1; i++) {
        json_t *next = seg_get(cur, &p, i);
        if (!next || json_is_null(next)) {
            next = p.seg[i + 1].is_index ? json_array() : json_object();
            if (seg_put(cur, &p, i, next, e) < 0) {
                json_decref(v);
                rc = -1;
                goto out;
            }
        } else if (!json_is_object(next) && !json_is_array(next)) {
            json_decref(v);
            rc = err_set(e, ERR_INVALID_ARGUMENT, "cannot set '%s': a parent is a %s", expr,
                         jsonx_type_name(next));
            goto out;
        }
        cur = next;
    }
    rc = seg_put(cur, &p, p.n - 1, v, e) < 0 ? -1 : 0;
out:
    flows_path_free(&p);
    return rc;
}

int flows_prop_delete(json_t *obj, const char *expr)
{
    flows_path_t p;
    if (flows_path_parse(expr, &p, NULL) < 0) return 0;
    json_t *cur = obj;
    for (int i = 0; i < p.n - 1 && cur; i++)
        cur = seg_get(cur, &p, i);
    int rc = 0;
    if (cur && seg_get(cur, &p, p.n - 1)) {
        const typeof(p.seg[0]) *s = &p.seg[p.n - 1];
        if (json_is_array(cur) && s->is_index)
            rc = json_array_remove(cur, (size_t)s->idx) == 0;
        else if (s->is_index) {
            char k[32];
            snprintf(k, sizeof k, "%ld", s->idx);
            rc = json_object_del(cur, k) == 0;
        } else
            rc = json_object_del(cur, s->key) == 0;
    }
    flows_path_free(&p);
    return rc;
}

/* ---- JavaScript-like helpers ---- */

int flows_js_truthy(const json_t *v)
{
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
    case JSON_TRUE:
        return 1;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0 && !isnan(json_real_value(v));
    default:
        return 1;
    }
}

static void js_num_str(double d, char *out, size_t cap)
{
    if (isnan(d)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, cap, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(out, cap, "%.0f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) { /* shortest round-trip, as JavaScript */
        snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d) break;
    }
}

char *flows_js_string(const json_t *v)
{
    char tmp[64];
    if (!v) return strdup("undefined");
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strndup(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        return strdup(tmp);
    case JSON_REAL:
        js_num_str(json_real_value(v), tmp, sizeof tmp);
        return strdup(tmp);
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_NULL:
        return strdup("null");
    default:
        return jsonx_dump(v);
    }
}

int flows_js_number(const json_t *v, double *out)
{
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        *out = (double)json_integer_value(v);
        return 1;
    case JSON_REAL:
        *out = json_real_value(v);
        return !isnan(*out);
    case JSON_TRUE:
        *out = 1;
        return 1;
    case JSON_FALSE:
    case JSON_NULL:
        *out = 0;
        return 1;
    case JSON_STRING: {
        const char *s = json_string_value(v);
        while (isspace((unsigned char)*s))
            s++;
        if (!*s) {
            *out = 0;
            return 1;
        }
        char *end;
        double d;
        if ((s[0] == '0') && (s[1] == 'x' || s[1] == 'X'))
            d = (double)strtoll(s + 2, &end, 16);
        else
            d = strtod(s, &end);
        while (isspace((unsigned char)*end))
            end++;
        if (*end || end == s) return 0;
        *out = d;
        return 1;
    }
    case JSON_ARRAY:
        if (json_array_size(v) == 0) {
            *out = 0;
            return 1;
        }
        if (json_array_size(v) == 1) return flows_js_number(json_array_get(v, 0), out);
        return 0;
    default:
        return 0;
    }
}

json_t *flows_js_num(double d)
{
    if (d == floor(d) && fabs(d) < 9007199254740992.0) return json_integer((json_int_t)d);
    return json_real(d);
}

/* ---- regular expressions ---- */

struct flows_re {
    pcre2_code *code;
    pcre2_match_data *md;
};

flows_re_t *flows_re_new(const char *pattern, int ignore_case, err_t *e)
{
    int errcode;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (ignore_case ? PCRE2_CASELESS : 0);
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &errcode, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        err_set(e, ERR_INVALID_ARGUMENT, "bad regular expression: %s at offset %zu",
                (const char *)msg, (size_t)off);
        return NULL;
    }
    flows_re_t *re = calloc(1, sizeof *re);
    re->code = code;
    re->md = pcre2_match_data_create_from_pattern(code, NULL);
    return re;
}

void flows_re_free(flows_re_t *re)
{
    if (!re) return;
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re);
}

int flows_re_test(flows_re_t *re, const char *s)
{
    return pcre2_match(re->code, (PCRE2_SPTR)s, strlen(s), 0, 0, re->md, NULL) >= 0;
}

char *flows_re_replace(flows_re_t *re, const char *s, const char *repl, int global)
{
    buf_t out = {0};
    size_t len = strlen(s), pos = 0;
    while (pos <= len) {
        int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, pos, 0, re->md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
        buf_append(&out, s + pos, ov[0] - pos);
        for (const char *r = repl; *r; r++) {
            if (*r == '$' && r[1] == '$') {
                buf_append(&out, "$", 1);
                r++;
            } else if (*r == '$' && r[1] == '&') {
                buf_append(&out, s + ov[0], ov[1] - ov[0]);
                r++;
            } else if (*r == '$' && isdigit((unsigned char)r[1]) && r[1] != '0') {
                int g = r[1] - '0';
                if (g < rc && ov[2 * g] != PCRE2_UNSET)
                    buf_append(&out, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
                r++;
            } else
                buf_append(&out, r, 1);
        }
        size_t next = ov[1];
        if (ov[1] == ov[0]) { /* empty match: copy one char and move on */
            if (ov[0] < len) buf_append(&out, s + ov[0], 1);
            next = ov[0] + 1;
        }
        pos = next;
        if (!global) break;
    }
    if (pos < len) buf_append(&out, s + pos, len - pos);
    return buf_steal(&out);
}

/* ---- typed inputs ---- */

static const char *const supported_types[] = {"msg",  "flow", "global", "str", "num", "bool",
                                              "json", "date", "env",    "re",  "bin", NULL};

static int in_list(const char *s, const char *const list[])
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0) return 1;
    return 0;
}

static const char *strip_store(const char *key)
{
    /* "#:(file)::key" -> "key" */
    if (key[0] == '#' && key[1] == ':' && key[2] == '(') {
        const char *end = strstr(key, ")::");
        if (end) return end + 3;
    }
    return key;
}

int flows_typed_check(flows_problems_t *p, const char *node_id, const char *field,
                      const char *type_field, const char *type, const char *value,
                      const char *const allowed[])
{
    if (!type || !*type || strcmp(type, "string") == 0) type = "str"; /* old alias */
    if (!value) value = "";
    if (strcmp(type, "jsonata") == 0) {
        flows_problem(p, node_id, type_field,
                      "JSONata expressions are not supported by Parley (use a function node)");
        return -1;
    }
    if (!in_list(type, supported_types) || (allowed && !in_list(type, allowed))) {
        flows_problem(p, node_id, type_field, "property type '%s' is not supported here", type);
        return -1;
    }
    err_t e;
    if (strcmp(type, "msg") == 0 || strcmp(type, "flow") == 0 || strcmp(type, "global") == 0) {
        const char *v = strcmp(type, "msg") == 0 ? value : strip_store(value);
        if (flows_path_check(v, &e) < 0) {
            flows_problem(p, node_id, field, "%s", e.message);
            return -1;
        }
    } else if (strcmp(type, "num") == 0) {
        json_t *s = json_string(value);
        double d;
        int ok = flows_js_number(s, &d);
        json_decref(s);
        if (!ok && !strstr(value, "${")) {
            flows_problem(p, node_id, field, "'%s' is not a number", value);
            return -1;
        }
    } else if (strcmp(type, "json") == 0 || strcmp(type, "bin") == 0) {
        json_t *j = json_loads(value, JSON_DECODE_ANY, NULL);
        if (!j && *value) {
            flows_problem(p, node_id, field, "invalid JSON: %.60s", value);
            return -1;
        }
        json_decref(j);
    } else if (strcmp(type, "re") == 0) {
        flows_re_t *re = flows_re_new(value, 0, &e);
        if (!re) {
            flows_problem(p, node_id, field, "%s", e.message);
            return -1;
        }
        flows_re_free(re);
    }
    return 0;
}

int flows_typed_eval(flows_node_t *n, json_t *msg, const char *type, const char *value,
                     json_t **out, err_t *e)
{
    *out = NULL;
    if (!type || !*type || strcmp(type, "string") == 0) type = "str"; /* old alias */
    if (!value) value = "";
    if (strcmp(type, "str") == 0 || strcmp(type, "re") == 0) {
        *out = json_string(value);
    } else if (strcmp(type, "msg") == 0) {
        json_t *v = msg ? flows_prop_get(msg, value) : NULL;
        if (v) *out = json_deep_copy(v);
    } else if (strcmp(type, "flow") == 0 || strcmp(type, "global") == 0) {
        *out = n ? flows_context_get(n, type, strip_store(value)) : NULL;
    } else if (strcmp(type, "num") == 0) {
        char *sub = strstr(value, "${") && n ? flows_env_subst(n, value) : NULL;
        json_t *s = json_string(sub ? sub : value);
        free(sub);
        double d;
        int ok = flows_js_number(s, &d);
        json_decref(s);
        if (!ok) return err_set(e, ERR_INVALID_ARGUMENT, "'%s' is not a number", value);
        *out = flows_js_num(d);
    } else if (strcmp(type, "bool") == 0) {
        *out = json_boolean(strcmp(value, "true") == 0);
    } else if (strcmp(type, "json") == 0 || strcmp(type, "bin") == 0) {
        json_error_t je;
        json_t *j = json_loads(value, JSON_DECODE_ANY, &je);
        if (!j) return err_set(e, ERR_INVALID_ARGUMENT, "invalid JSON: %s", je.text);
        if (strcmp(type, "bin") == 0 && json_is_string(j)) { /* bytes of the string */
            const char *s = json_string_value(j);
            json_t *arr = json_array();
            for (size_t i = 0; i < json_string_length(j); i++)
                json_array_append_new(arr, json_integer((unsigned char)s[i]));
            json_decref(j);
            j = arr;
        }
        *out = j;
    } else if (strcmp(type, "date") == 0) {
        int64_t now = clock_now_ms();
        if (strcmp(value, "iso") == 0 || strcmp(value, "object") == 0) {
            char ts[32];
            clock_format_rfc3339(now, ts, sizeof ts);
            *out = json_string(ts);
        } else
            *out = json_integer(now);
    } else if (strcmp(type, "env") == 0) {
        if (!n) return 0;
        if (strstr(value, "${")) {
            char *s = flows_env_subst(n, value);
            *out = json_string(s);
            free(s);
        } else
            *out = flows_env_value(n, value);
    } else {
        return err_set(e, ERR_INVALID_ARGUMENT, "property type '%s' is not supported", type);
    }
    return *out ? 1 : 0;
}

int flows_typed_eval_field(flows_node_t *n, json_t *msg, const char *field, const char *type_field,
                           const char *def_type, json_t **out, err_t *e)
{
    json_t *cfg = flows_node_config(n);
    json_t *v = json_object_get(cfg, field);
    const char *t = json_string_value(json_object_get(cfg, type_field));
    if (!t || !*t) t = def_type;
    char *sv = NULL;
    if (v && !json_is_string(v)) sv = flows_js_string(v);
    int rc = flows_typed_eval(n, msg, t, sv ? sv : json_string_value(v), out, e);
    free(sv);
    return rc;
}

int flows_target_set(flows_node_t *n, json_t *msg, const char *type, const char *path, json_t *v,
                     err_t *e)
{
    if (!type || strcmp(type, "msg") == 0) return flows_prop_set(msg, path, v, e);
    if (strcmp(type, "flow") == 0 || strcmp(type, "global") == 0) {
        int rc = flows_context_set(n, type, strip_store(path), v);
        json_decref(v);
        if (rc < 0) return err_set(e, ERR_INTERNAL, "could not store %s context", type);
        return 0;
    }
    json_decref(v);
    return err_set(e, ERR_INVALID_ARGUMENT, "cannot set a property of type '%s'", type);
}

int flows_target_delete(flows_node_t *n, json_t *msg, const char *type, const char *path)
{
    if (!type || strcmp(type, "msg") == 0) return flows_prop_delete(msg, path);
    if (strcmp(type, "flow") == 0 || strcmp(type, "global") == 0)
        return flows_context_set(n, type, strip_store(path), NULL);
    return 0;
}

char *flows_env_subst(flows_node_t *n, const char *s)
{
    buf_t b = {0};
    while (*s) {
        const char *st = strstr(s, "${");
        const char *en = st ? strchr(st, '}') : NULL;
        if (!st || !en) {
            buf_append(&b, s, strlen(s));
            break;
        }
        buf_append(&b, s, (size_t)(st - s));
        char name[128];
        size_t l = (size_t)(en - st - 2);
        if (l >= sizeof name) l = sizeof name - 1;
        memcpy(name, st + 2, l);
        name[l] = 0;
        char *v = n ? flows_env_get(n, name) : NULL;
        if (v) buf_append(&b, v, strlen(v));
        free(v);
        s = en + 1;
    }
    return buf_steal(&b);
}
