/* split.c: Node-RED's `split` and `join` nodes (17-split.js), which work as a pair through
 * msg.parts {id, index, count, type, ch, key, len, property, parts}.
 *
 * split: a string by a separator (spltType "str", escapes \n \r \t \f \0), by a byte
 * sequence ("bin", given as a JSON array of bytes) or in chunks of `splt` characters
 * ("len"), with `stream` keeping the remainder for the next message; an array in chunks of
 * `arraySplt`; an object into one message per key (`addname` also stores the key). Parley
 * carries Buffers as arrays of bytes, so a Buffer splits as an array.
 *
 * join: mode "auto" rebuilds what split produced from msg.parts; mode "custom" builds a
 * string (joiner), array, object (key from msg[key]), merged object or buffer (an array of
 * bytes) from `count` messages, after `timeout` seconds, or when a message has
 * msg.complete; msg.reset drops a group, msg.restartTimeout restarts its timer;
 * `accumulate` keeps adding to a sent group. Mode "reduce" needs JSONata: refused at deploy.
 * Unlike Node-RED, `complete` nodes see each message as done when join stores it. */
#include "base/sec.h"
#include "flows/jsjson.h"
#include "flows/node.h"
#include "flows/props.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Node-RED's unescaping of \n \r \t \e \f \0 in separators ("\e" stays "e" as in JS) */
static char *unescape_sep(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && strchr("nrtef0", s[i + 1])) {
            char c = s[i + 1];
            o[k++] = c == 'n'   ? '\n'
                     : c == 'r' ? '\r'
                     : c == 't' ? '\t'
                     : c == 'f' ? '\f'
                     : c == '0' ? '\0'
                                : 'e';
            i++;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = 0;
    *len = k;
    return o;
}

/* bytes of a JSON array of numbers ("[10, 13]"); NULL when not such an array */
static char *bytes_of(const char *json_text, size_t *len)
{
    json_t *a = json_loads(json_text ? json_text : "", JSON_DECODE_ANY, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        return NULL;
    }
    char *o = malloc(json_array_size(a) + 1);
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) o[i] = (char)(json_is_integer(x) ? json_integer_value(x) : 0);
    o[json_array_size(a)] = 0;
    *len = json_array_size(a);
    json_decref(a);
    return o;
}

static void fresh_msgid(json_t *m)
{
    json_t *t = flows_msg_new();
    json_object_set(m, "_msgid", json_object_get(t, "_msgid"));
    json_decref(t);
}

static void new_part_id(char out[17])
{
    unsigned char b[8];
    sec_random(b, sizeof b);
    for (int i = 0; i < 8; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* number of UTF-8 characters in s[0..len) and the byte offset of character `ch` */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

static size_t utf8_offset(const char *s, size_t len, size_t ch)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (n == ch) return i;
            n++;
        }
    }
    return len;
}

/* ---- split ---- */

typedef struct {
    int type; /* 0 str, 1 bin, 2 len */
    char *sep;
    size_t seplen;
    json_t *ch; /* parts.ch: the separator string, or the byte array for bin */
    long len;   /* len mode */
    long arraylen;
    int stream;
    char *addname;
    char *property;
    long c;
    char *remainder; /* stream mode */
} split_t;

static int split_conf(const json_t *cfg, split_t *s, char *why, size_t whylen)
{
    const char *type = json_string_value(json_object_get(cfg, "spltType"));
    const char *splt = json_string_value(json_object_get(cfg, "splt"));
    if (!type || !*type || strcmp(type, "str") == 0) {
        s->type = 0;
        s->sep = unescape_sep(splt && *splt ? splt : "\\n", &s->seplen);
        s->ch = json_stringn(s->sep, s->seplen);
    } else if (strcmp(type, "bin") == 0) {
        s->type = 1;
        s->sep = bytes_of(splt, &s->seplen);
        if (!s->sep) {
            snprintf(why, whylen, "must be a JSON array of bytes for spltType bin");
            return -1;
        }
        s->ch = json_loads(splt, JSON_DECODE_ANY, NULL);
    } else if (strcmp(type, "len") == 0) {
        s->type = 2;
        json_t *v = json_object_get(cfg, "splt");
        double d = 0;
        if (!flows_js_number(v, &d) || d < 1) {
            snprintf(why, whylen, "invalid split length: %s", splt ? splt : "");
            return -1;
        }
        s->len = (long)d;
    } else {
        snprintf(why, whylen, "spltType must be str, bin or len");
        return -2;
    }
    json_t *as = json_object_get(cfg, "arraySplt");
    double d = 1;
    if (as && (!flows_js_number(as, &d) || d < 1)) {
        snprintf(why, whylen, "invalid array split length");
        return -3;
    }
    s->arraylen = (long)d;
    return 0;
}

static void split_free(split_t *s)
{
    free(s->sep);
    json_decref(s->ch);
    free(s->addname);
    free(s->property);
    free(s->remainder);
    free(s);
}

static void split_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    split_t *s = calloc(1, sizeof *s);
    char why[200];
    int rc = split_conf(cfg, s, why, sizeof why);
    if (rc)
        flows_problem(p, id, rc == -2 ? "spltType" : rc == -3 ? "arraySplt" : "splt", "%s", why);
    split_free(s);
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    err_t e = {0};
    if (prop && *prop && flows_path_check(prop, &e) != 0)
        flows_problem(p, id, "property", "%s", e.message);
}

static int split_start(flows_node_t *n, err_t *e)
{
    json_t *cfg = flows_node_config(n);
    split_t *s = calloc(1, sizeof *s);
    char why[200];
    if (split_conf(cfg, s, why, sizeof why) != 0) {
        split_free(s);
        return err_set(e, ERR_INVALID_ARGUMENT, "Invalid split property: %s", why);
    }
    s->stream = flows_js_truthy(json_object_get(cfg, "stream"));
    const char *an = json_string_value(json_object_get(cfg, "addname"));
    s->addname = strdup(an ? an : "");
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    s->property = strdup(prop && *prop ? prop : "payload");
    flows_node_set_state(n, s);
    return 0;
}

/* set msg[property] = v (steals) and send a deep copy with a fresh _msgid */
static void send_piece(flows_node_t *n, split_t *s, json_t *msg, json_t *v)
{
    err_t e = {0};
    flows_prop_set(msg, s->property, v, &e);
    json_t *m = json_deep_copy(msg);
    fresh_msgid(m);
    flows_send(n, 0, m);
}

static void split_string(flows_node_t *n, split_t *s, json_t *msg, json_t *parts, const char *str,
                         size_t slen)
{
    json_object_set_new(parts, "type", json_string("string"));
    if (s->type == 2) {
        json_object_set_new(parts, "ch", json_string(""));
        json_object_set_new(parts, "len", json_integer(s->len));
        size_t chars = utf8_chars(str, slen);
        size_t count = (chars + (size_t)s->len - 1) / (size_t)s->len;
        if (!s->stream) {
            json_object_set_new(parts, "count", json_integer((json_int_t)count));
            s->c = 0;
        }
        size_t pos = 0; /* in characters */
        for (size_t i = 0; i + 1 < count; i++) {
            size_t a = utf8_offset(str, slen, pos), b = utf8_offset(str, slen, pos + s->len);
            json_object_set_new(parts, "index", json_integer(s->c++));
            send_piece(n, s, msg, json_stringn(str + a, b - a));
            pos += (size_t)s->len;
        }
        size_t a = utf8_offset(str, slen, pos);
        char *rest = strndup(str + a, slen - a);
        if (!s->stream || utf8_chars(rest, strlen(rest)) == (size_t)s->len) {
            json_object_set_new(parts, "index", json_integer(s->c++));
            send_piece(n, s, msg, json_string(rest));
            free(rest);
            free(s->remainder);
            s->remainder = NULL;
        } else {
            free(s->remainder);
            s->remainder = rest;
        }
        return;
    }
    /* value.split(sep) */
    json_t *pieces = json_array();
    if (s->seplen == 0) { /* "".split("") is []; "ab".split("") is ["a","b"] */
        for (size_t i = 0; i < slen;) {
            size_t j = i + 1;
            while (j < slen && ((unsigned char)str[j] & 0xC0) == 0x80)
                j++;
            json_array_append_new(pieces, json_stringn(str + i, j - i));
            i = j;
        }
    } else {
        size_t start = 0;
        for (size_t i = 0; i + s->seplen <= slen;) {
            if (memcmp(str + i, s->sep, s->seplen) == 0) {
                json_array_append_new(pieces, json_stringn(str + start, i - start));
                i += s->seplen;
                start = i;
            } else {
                i++;
            }
        }
        json_array_append_new(pieces, json_stringn(str + start, slen - start));
    }
    json_object_set(parts, "ch", s->ch);
    size_t np = json_array_size(pieces);
    for (size_t i = 0; i + 1 < np; i++) {
        json_object_set_new(parts, "index", json_integer(s->c++));
        if (!s->stream) json_object_set_new(parts, "count", json_integer((json_int_t)np));
        send_piece(n, s, msg, json_incref(json_array_get(pieces, i)));
    }
    if (np) {
        json_t *last = json_array_get(pieces, np - 1);
        if (!s->stream) {
            json_object_set_new(parts, "index", json_integer(s->c++));
            json_object_set_new(parts, "count", json_integer((json_int_t)np));
            send_piece(n, s, msg, json_incref(last));
            s->c = 0;
        } else {
            free(s->remainder);
            s->remainder = strndup(json_string_value(last), json_string_length(last));
        }
    }
    json_decref(pieces);
}

static void split_input(flows_node_t *n, json_t *msg)
{
    split_t *s = flows_node_state(n);
    json_t *value = flows_prop_get(msg, s->property);
    if (!value) { /* nothing to split: Node-RED drops it */
        json_decref(msg);
        return;
    }
    json_incref(value);
    json_t *parts = json_object();
    json_t *old = json_object_get(msg, "parts");
    if (old) json_object_set(parts, "parts", old);
    char id[17];
    new_part_id(id);
    json_object_set_new(parts, "id", json_string(id));
    if (strcmp(s->property, "payload") != 0)
        json_object_set_new(parts, "property", json_string(s->property));
    json_object_set_new(msg, "parts", parts); /* parts stays borrowed below */
    json_object_del(msg, "_msgid");

    if (json_is_string(value)) {
        size_t rl = s->remainder ? strlen(s->remainder) : 0;
        size_t vl = json_string_length(value);
        char *str = malloc(rl + vl + 1);
        if (rl) memcpy(str, s->remainder, rl);
        memcpy(str + rl, json_string_value(value), vl);
        str[rl + vl] = 0;
        free(s->remainder);
        s->remainder = NULL;
        split_string(n, s, msg, parts, str, rl + vl);
        free(str);
    } else if (json_is_array(value)) {
        json_object_set_new(parts, "type", json_string("array"));
        size_t len = json_array_size(value), step = (size_t)s->arraylen;
        size_t count = (len + step - 1) / step;
        json_object_set_new(parts, "count", json_integer((json_int_t)count));
        json_object_set_new(parts, "len", json_integer(s->arraylen));
        for (size_t i = 0; i < count; i++) {
            json_t *piece;
            if (step == 1) {
                piece = json_incref(json_array_get(value, i));
            } else {
                piece = json_array();
                for (size_t k = i * step; k < len && k < (i + 1) * step; k++)
                    json_array_append(piece, json_array_get(value, k));
            }
            json_object_set_new(parts, "index", json_integer((json_int_t)i));
            send_piece(n, s, msg, piece);
        }
    } else if (json_is_object(value)) {
        json_object_set_new(parts, "type", json_string("object"));
        size_t count = json_object_size(value), j = 0;
        const char *k;
        json_t *x;
        json_object_foreach(value, k, x)
        {
            err_t e = {0};
            if (s->addname[0]) flows_prop_set(msg, s->addname, json_string(k), &e);
            json_object_set_new(parts, "key", json_string(k));
            json_object_set_new(parts, "index", json_integer((json_int_t)j++));
            json_object_set_new(parts, "count", json_integer((json_int_t)count));
            send_piece(n, s, msg, json_incref(x));
        }
    }
    /* numbers, booleans, null: dropped */
    json_decref(value);
    json_decref(msg);
}

static void split_stop(flows_node_t *n)
{
    split_t *s = flows_node_state(n);
    if (s) split_free(s);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_split = {
    .type = "split",
    .validate = split_validate,
    .start = split_start,
    .input = split_input,
    .stop = split_stop,
};

/* ---- join ---- */

typedef struct group {
    char *id;
    char type[8];  /* string array object buffer */
    json_t *items; /* array (with nulls for holes) or object */
    unsigned char *filled;
    size_t nfilled;
    long current, target;
    json_t *join_ch; /* string: separator (string, or array of bytes) */
    long arraylen;
    json_t *msg; /* merged message */
    char *prop;
    uint64_t timer;
    struct group *next;
} group_t;

typedef struct {
    int automode;
    char *property;
    int full;
    char *key;
    int64_t timer_ms;
    long count;
    int count_from_parts; /* count is "" */
    json_t *joiner;       /* string, or byte array for joinerType bin */
    char build[8];
    int accumulate;
    int useparts;
    group_t *groups;
    flows_node_t *n;
} join_t;

static group_t *group_find(join_t *j, const char *id, group_t ***link)
{
    for (group_t **pp = &j->groups; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            if (link) *link = pp;
            return *pp;
        }
    return NULL;
}

static void group_free(group_t *g)
{
    free(g->id);
    json_decref(g->items);
    free(g->filled);
    json_decref(g->join_ch);
    json_decref(g->msg);
    free(g->prop);
    free(g);
}

static void group_drop(join_t *j, const char *id)
{
    group_t **pp;
    group_t *g = group_find(j, id, &pp);
    if (!g) return;
    if (g->timer) flows_timer_cancel(j->n, g->timer);
    *pp = g->next;
    group_free(g);
}

/* JavaScript String(x) as Array.prototype.join uses it */
static void js_join_elem(buf_t *b, const json_t *x)
{
    if (!x || json_is_null(x)) return;
    if (json_is_object(x)) {
        buf_puts(b, "[object Object]");
    } else if (json_is_array(x)) {
        for (size_t i = 0; i < json_array_size(x); i++) {
            if (i) buf_puts(b, ",");
            js_join_elem(b, json_array_get(x, i));
        }
    } else if (json_is_string(x)) {
        buf_append(b, json_string_value(x), json_string_length(x));
    } else {
        char *s = flows_js_string(x);
        buf_puts(b, s);
        free(s);
    }
}

static void append_bytes(json_t *out, const json_t *v)
{
    if (json_is_string(v)) {
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        for (size_t i = 0; i < json_string_length(v); i++)
            json_array_append_new(out, json_integer(s[i]));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append(out, x);
    }
}

static void complete_send(join_t *j, const char *id)
{
    group_t *g = group_find(j, id, NULL);
    if (!g) return;
    if (g->timer) {
        flows_timer_cancel(j->n, g->timer);
        g->timer = 0;
    }
    json_t *payload;
    if (strcmp(g->type, "array") == 0 && g->arraylen > 1) {
        payload = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(g->items, i, x)
        {
            if (json_is_array(x))
                json_array_extend(payload, x);
            else
                json_array_append(payload, x);
        }
    } else if (strcmp(g->type, "buffer") == 0) {
        payload = json_array();
        for (size_t i = 0; i < json_array_size(g->items); i++) {
            if (i && g->join_ch) append_bytes(payload, g->join_ch);
            append_bytes(payload, json_array_get(g->items, i));
        }
    } else if (strcmp(g->type, "string") == 0) {
        buf_t sep, b;
        buf_init(&sep);
        buf_init(&b);
        if (g->join_ch) js_join_elem(&sep, g->join_ch);
        for (size_t i = 0; i < json_array_size(g->items); i++) {
            if (i) buf_append(&b, sep.data ? sep.data : "", sep.len);
            js_join_elem(&b, json_array_get(g->items, i));
        }
        payload = json_stringn(b.data ? b.data : "", b.len);
        if (!payload) payload = json_string("");
        buf_free(&sep);
        buf_free(&b);
    } else {
        payload = json_deep_copy(g->items);
    }
    json_t *out = json_deep_copy(g->msg);
    err_t e = {0};
    flows_prop_set(out, g->prop ? g->prop : "payload", payload, &e);
    json_t *parts = json_object_get(out, "parts");
    json_t *inner = parts ? json_object_get(parts, "parts") : NULL;
    if (inner)
        json_object_set(out, "parts", inner);
    else
        json_object_del(out, "parts");
    int had_complete = json_object_get(g->msg, "complete") != NULL;
    json_object_del(out, "complete");
    if (j->automode || !j->accumulate || had_complete) group_drop(j, id);
    flows_send(j->n, 0, out);
}

static void join_timeout(flows_node_t *n, void *arg)
{
    join_t *j = flows_node_state(n);
    group_t *g = j ? group_find(j, arg, NULL) : NULL;
    if (g) {
        g->timer = 0;
        complete_send(j, arg);
    }
    free(arg);
}

static void join_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *mode = json_string_value(json_object_get(cfg, "mode"));
    if (mode && strcmp(mode, "reduce") == 0)
        flows_problem(p, id, "mode", "reduce mode uses JSONata, which Parley does not support");
    else if (mode && *mode && strcmp(mode, "auto") && strcmp(mode, "custom"))
        flows_problem(p, id, "mode", "must be auto or custom");
    const char *build = json_string_value(json_object_get(cfg, "build"));
    if (build && *build && strcmp(build, "string") && strcmp(build, "array") &&
        strcmp(build, "object") && strcmp(build, "merged") && strcmp(build, "buffer"))
        flows_problem(p, id, "build", "must be string, array, object, merged or buffer");
    const char *jt = json_string_value(json_object_get(cfg, "joinerType"));
    if (jt && strcmp(jt, "bin") == 0) {
        size_t l;
        const char *jn = json_string_value(json_object_get(cfg, "joiner"));
        char *b = bytes_of(jn && *jn ? jn : "[]", &l);
        if (!b) flows_problem(p, id, "joiner", "must be a JSON array of bytes for joinerType bin");
        free(b);
    }
    const char *pt = json_string_value(json_object_get(cfg, "propertyType"));
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    err_t e = {0};
    if ((!pt || strcmp(pt, "full") != 0) && prop && *prop && flows_path_check(prop, &e) != 0)
        flows_problem(p, id, "property", "%s", e.message);
    double d;
    json_t *t = json_object_get(cfg, "timeout");
    if (t && !flows_js_number(t, &d)) flows_problem(p, id, "timeout", "must be a number");
    json_t *c = json_object_get(cfg, "count");
    if (c && !flows_js_number(c, &d)) flows_problem(p, id, "count", "must be a number");
}

static int join_start(flows_node_t *n, err_t *e)
{
    json_t *cfg = flows_node_config(n);
    join_t *j = calloc(1, sizeof *j);
    if (!j) return err_set(e, ERR_INTERNAL, "out of memory");
    j->n = n;
    const char *mode = json_string_value(json_object_get(cfg, "mode"));
    j->automode = !mode || !*mode || strcmp(mode, "auto") == 0;
    const char *pt = json_string_value(json_object_get(cfg, "propertyType"));
    j->full = pt && strcmp(pt, "full") == 0;
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    j->property = strdup(!j->full && prop && *prop ? prop : "payload");
    const char *key = json_string_value(json_object_get(cfg, "key"));
    j->key = strdup(key && *key ? key : "topic");
    double d = 0;
    if (!j->automode && flows_js_number(json_object_get(cfg, "timeout"), &d))
        j->timer_ms = (int64_t)(d * 1000);
    d = 0;
    json_t *c = json_object_get(cfg, "count");
    if (c) flows_js_number(c, &d);
    j->count = (long)d;
    j->count_from_parts = json_is_string(c) && json_string_length(c) == 0;
    const char *jt = json_string_value(json_object_get(cfg, "joinerType"));
    const char *jn = json_string_value(json_object_get(cfg, "joiner"));
    if (jt && strcmp(jt, "bin") == 0) {
        j->joiner = json_loads(jn && *jn ? jn : "[]", JSON_DECODE_ANY, NULL);
    } else {
        size_t l;
        char *s = unescape_sep(jn ? jn : "", &l);
        j->joiner = json_stringn(s, l);
        free(s);
    }
    const char *build = json_string_value(json_object_get(cfg, "build"));
    snprintf(j->build, sizeof j->build, "%s", build && *build ? build : "array");
    /* a boolean, or Node-RED's default string "false" */
    json_t *acc = json_object_get(cfg, "accumulate");
    j->accumulate =
        json_is_string(acc) ? strcmp(json_string_value(acc), "true") == 0 : flows_js_truthy(acc);
    json_t *up = json_object_get(cfg, "useparts");
    j->useparts = up ? flows_js_truthy(up) : 1;
    flows_node_set_state(n, j);
    return 0;
}

static int has(const json_t *o, const char *k)
{
    return json_object_get(o, k) != NULL;
}

static void join_input(flows_node_t *n, json_t *msg)
{
    join_t *j = flows_node_state(n);
    json_t *parts = json_object_get(msg, "parts");
    if (j->automode && (!json_is_object(parts) || !has(parts, "id"))) {
        if (has(msg, "reset")) {
            while (j->groups)
                group_drop(j, j->groups->id);
        } else {
            flows_warn(n, "Message missing msg.parts property - cannot join in 'auto' mode");
        }
        json_decref(msg);
        return;
    }
    if (!j->automode && parts && !j->useparts) {
        json_t *inner = json_object_get(parts, "parts");
        if (inner)
            json_object_set_new(msg, "parts", json_pack("{s:O}", "parts", inner));
        else
            json_object_del(msg, "parts");
        parts = json_object_get(msg, "parts");
    }
    char part_id[128] = "_";
    const char *ptype;
    long target = 0;
    json_t *join_ch = NULL, *property;
    char *pkey = NULL;
    long arraylen = 0;
    int has_index = 0;
    long index = 0;
    const char *prop_name = j->property;
    if (j->automode) {
        json_t *pid = json_object_get(parts, "id");
        char *sid = flows_js_string(pid);
        snprintf(part_id, sizeof part_id, "%s", sid);
        free(sid);
        ptype = json_string_value(json_object_get(parts, "type"));
        if (!ptype) ptype = "";
        double d;
        if (flows_js_number(json_object_get(parts, "count"), &d)) target = (long)d;
        join_ch = json_object_get(parts, "ch");
        json_t *k = json_object_get(parts, "key");
        if (k && !json_is_null(k)) pkey = flows_js_string(k);
        if (flows_js_number(json_object_get(parts, "len"), &d)) arraylen = (long)d;
        json_t *ix = json_object_get(parts, "index");
        if (ix && flows_js_number(ix, &d)) {
            has_index = 1;
            index = (long)d;
        }
        const char *pp = json_string_value(json_object_get(parts, "property"));
        prop_name = pp && *pp ? pp : "payload";
        property = flows_prop_get(msg, prop_name);
    } else {
        ptype = j->build;
        target = j->count;
        join_ch = j->joiner;
        if (j->count_from_parts && parts) {
            double d = 0;
            flows_js_number(json_object_get(parts, "count"), &d);
            target = (long)d;
            json_t *pid = json_object_get(parts, "id");
            if (pid) {
                char *sid = flows_js_string(pid);
                snprintf(part_id, sizeof part_id, "%s", sid);
                free(sid);
            }
        }
        if (strcmp(j->build, "object") == 0) {
            json_t *k = flows_prop_get(msg, j->key);
            if (k && !json_is_null(k)) pkey = flows_js_string(k);
            if (pkey && !*pkey) {
                free(pkey);
                pkey = NULL;
            }
        }
        property = j->full ? msg : flows_prop_get(msg, j->property);
    }
    group_t *g = group_find(j, part_id, NULL);
    if (has(msg, "restartTimeout") && g) {
        if (g->timer) flows_timer_cancel(n, g->timer);
        g->timer = 0;
        if (j->timer_ms > 0)
            g->timer = flows_timer(n, j->timer_ms, join_timeout, strdup(part_id), free);
    }
    if (has(msg, "reset")) {
        group_drop(j, part_id);
        free(pkey);
        json_decref(msg);
        return;
    }
    if (strcmp(ptype, "object") == 0 && !pkey) {
        if (j->automode) {
            flows_warn(n, "Message missing 'msg.parts.key' property - cannot add to object");
        } else if (has(msg, "complete")) {
            if (g) {
                json_object_set(g->msg, "complete", json_object_get(msg, "complete"));
                complete_send(j, part_id);
            }
        } else {
            flows_warn(n, "Message missing key property 'msg.%s' - cannot add to object", j->key);
        }
        json_decref(msg);
        return;
    }
    if (!g) {
        g = calloc(1, sizeof *g);
        g->id = strdup(part_id);
        int obj = strcmp(ptype, "object") == 0 || strcmp(ptype, "merged") == 0;
        snprintf(g->type, sizeof g->type, "%s", obj ? "object" : ptype);
        g->items = obj ? json_object() : json_array();
        g->target = target;
        g->msg = json_deep_copy(msg);
        if (strcmp(ptype, "string") == 0 || strcmp(ptype, "buffer") == 0)
            g->join_ch = join_ch ? json_incref(join_ch) : NULL;
        else if (strcmp(ptype, "array") == 0)
            g->arraylen = arraylen;
        g->prop = strdup(prop_name);
        g->next = j->groups;
        j->groups = g;
        if (j->timer_ms > 0)
            g->timer = flows_timer(n, j->timer_ms, join_timeout, strdup(part_id), free);
    }
    if (strcmp(ptype, "object") == 0) {
        json_object_set_new(g->items, pkey, property ? json_deep_copy(property) : json_null());
        g->current = (long)json_object_size(g->items);
    } else if (strcmp(ptype, "merged") == 0) {
        if (!json_is_object(property)) {
            if (!has(msg, "complete")) flows_warn(n, "Cannot merge non-object types");
        } else {
            const char *k;
            json_t *x;
            json_object_foreach(property, k, x)
            {
                if (strcmp(k, "_msgid") != 0) json_object_set_new(g->items, k, json_deep_copy(x));
            }
            g->current = (long)json_object_size(g->items);
        }
    } else if (has_index && index >= 0 && index < 10000000) {
        size_t ix = (size_t)index;
        while (json_array_size(g->items) <= ix)
            json_array_append_new(g->items, json_null());
        if (g->nfilled <= ix) {
            g->filled = realloc(g->filled, ix + 1);
            memset(g->filled + g->nfilled, 0, ix + 1 - g->nfilled);
            g->nfilled = ix + 1;
        }
        if (!g->filled[ix]) g->current++;
        g->filled[ix] = 1;
        json_array_set_new(g->items, ix, property ? json_deep_copy(property) : json_null());
    } else if (property) {
        json_array_append_new(g->items, json_deep_copy(property));
        g->current++;
    }
    free(pkey);
    /* Object.assign(group.msg, msg) */
    const char *k;
    json_t *x;
    json_object_foreach(msg, k, x) json_object_set(g->msg, k, x);
    long tcnt = g->target;
    if (json_is_object(parts)) {
        double d = 0;
        if (!tcnt && flows_js_number(json_object_get(parts, "count"), &d)) tcnt = (long)d;
        g->target = tcnt;
    }
    if ((tcnt > 0 && g->current >= tcnt) || has(msg, "complete")) complete_send(j, part_id);
    json_decref(msg);
}

static void join_stop(flows_node_t *n)
{
    join_t *j = flows_node_state(n);
    if (!j) return;
    while (j->groups) {
        group_t *g = j->groups;
        j->groups = g->next;
        group_free(g); /* timers are cancelled by the runtime */
    }
    free(j->property);
    free(j->key);
    json_decref(j->joiner);
    free(j);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_join = {
    .type = "join",
    .validate = join_validate,
    .start = join_start,
    .input = join_input,
    .stop = join_stop,
};
