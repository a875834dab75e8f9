/* mustache.c: the Mustache compiler and renderer behind flows/mustache.h. The parser
 * follows mustache.js 4's scanner step by step (tag regexes, standalone lines, nesting
 * errors) so templates written for Node-RED render byte for byte the same; the renderer
 * walks a flat token array where each section records where its body ends. */
#include "flows/mustache.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_TEXT,
    T_NAME,     /* {{x}}: escaped */
    T_RAW,      /* {{{x}}}, {{&x}} */
    T_SECTION,  /* {{#x}} */
    T_INVERTED, /* {{^x}} */
    T_CLOSE,    /* {{/x}}: parse time only */
    T_SKIP,     /* comments, partials, delimiter changes */
} tok_type_t;

typedef struct {
    tok_type_t type;
    int deleted;
    size_t off, len; /* text, or the tag's name, inside m->src */
    size_t end;      /* sections: index of the first token after the body */
} tok_t;

struct flows_mustache {
    char *src;
    tok_t *toks;
    size_t n;
    int depth; /* deepest section nesting */
};

/* ---- JavaScript number and value formatting ---- */

void flows_mustache_num(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) {
        snprintf(out, cap, "0");
        return;
    }
    /* shortest digits that read back as v */
    char e[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    const char *s = e;
    int neg = 0;
    if (*s == '-') neg = 1, s++;
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (isdigit((unsigned char)*s)) digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int exp10 = atoi(s + 1); /* value = d.ddd * 10^exp10 */
    int k = exp10 + 1;       /* position of the decimal point after k digits */
    buf_t b;
    buf_init(&b);
    if (neg) buf_puts(&b, "-");
    if (k >= 1 && k <= 21) {
        if (nd <= k) {
            buf_puts(&b, digits);
            for (int i = nd; i < k; i++)
                buf_puts(&b, "0");
        } else {
            buf_append(&b, digits, (size_t)k);
            buf_puts(&b, ".");
            buf_puts(&b, digits + k);
        }
    } else if (k <= 0 && k > -6) {
        buf_puts(&b, "0.");
        for (int i = 0; i < -k; i++)
            buf_puts(&b, "0");
        buf_puts(&b, digits);
    } else {
        buf_append(&b, digits, 1);
        if (nd > 1) {
            buf_puts(&b, ".");
            buf_puts(&b, digits + 1);
        }
        buf_printf(&b, "e%c%d", k - 1 >= 0 ? '+' : '-', abs(k - 1));
    }
    snprintf(out, cap, "%s", b.data);
    buf_free(&b);
}

static void js_join(const json_t *v, buf_t *out)
{
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x)
    {
        if (i) buf_puts(out, ",");
        if (json_is_null(x)) continue;
        flows_mustache_str(x, out);
    }
}

void flows_mustache_str(const json_t *v, buf_t *out)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_STRING:
        buf_append(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        buf_printf(out, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        flows_mustache_num(json_real_value(v), num, sizeof num);
        buf_puts(out, num);
        break;
    case JSON_TRUE:
        buf_puts(out, "true");
        break;
    case JSON_FALSE:
        buf_puts(out, "false");
        break;
    case JSON_ARRAY:
        js_join(v, out);
        break;
    case JSON_OBJECT:
        buf_puts(out, "[object Object]");
        break;
    case JSON_NULL:
        break;
    }
}

/* ---- the parser ---- */

typedef struct {
    const char *s;
    size_t len, pos;
    char open[16], close[16];
    size_t olen, clen;
} scan_t;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static const char *find(const scan_t *sc, size_t from, const char *pat, size_t plen)
{
    if (plen == 0 || from > sc->len) return NULL;
    const char *p = sc->s + from, *end = sc->s + sc->len;
    while ((size_t)(end - p) >= plen) {
        const char *q = memchr(p, pat[0], (size_t)(end - p) - plen + 1);
        if (!q) return NULL;
        if (memcmp(q, pat, plen) == 0) return q;
        p = q + 1;
    }
    return NULL;
}

/* mustache.js scanUntil(/\s*PAT/): the text before the leftmost match (or the whole rest);
 * pos moves to the match. */
static void scan_until_ws(scan_t *sc, const char *pat, size_t plen, size_t *off, size_t *len)
{
    const char *q = find(sc, sc->pos, pat, plen);
    size_t stop = q ? (size_t)(q - sc->s) : sc->len;
    if (q)
        while (stop > sc->pos && is_ws(sc->s[stop - 1]))
            stop--;
    *off = sc->pos;
    *len = stop - sc->pos;
    sc->pos = stop;
}

/* mustache.js scan(/\s*PAT/) anchored at pos: 1 and moves past it, or 0. */
static int scan_ws(scan_t *sc, const char *pat, size_t plen)
{
    size_t p = sc->pos;
    while (p < sc->len && is_ws(sc->s[p]))
        p++;
    if (sc->len - p >= plen && memcmp(sc->s + p, pat, plen) == 0) {
        sc->pos = p + plen;
        return 1;
    }
    return 0;
}

static void skip_ws(scan_t *sc)
{
    while (sc->pos < sc->len && is_ws(sc->s[sc->pos]))
        sc->pos++;
}

static int set_tags(scan_t *sc, const char *v, size_t n, err_t *e)
{
    /* "OPEN CLOSE", split on whitespace, exactly two parts */
    size_t i = 0, a0, a1, b0, b1;
    while (i < n && is_ws(v[i]))
        i++;
    a0 = i;
    while (i < n && !is_ws(v[i]))
        i++;
    a1 = i;
    while (i < n && is_ws(v[i]))
        i++;
    b0 = i;
    while (i < n && !is_ws(v[i]))
        i++;
    b1 = i;
    if (a1 == a0 || b1 == b0 || a1 - a0 >= sizeof sc->open || b1 - b0 >= sizeof sc->close - 1)
        return err_set(e, ERR_INVALID_ARGUMENT, "Invalid tags: %.*s", (int)(n > 60 ? 60 : n), v);
    memcpy(sc->open, v + a0, a1 - a0);
    sc->open[a1 - a0] = 0;
    sc->olen = a1 - a0;
    memcpy(sc->close, v + b0, b1 - b0);
    sc->close[b1 - b0] = 0;
    sc->clen = b1 - b0;
    return 0;
}

typedef struct {
    tok_t *v;
    size_t n, cap;
} toks_t;

static size_t push(toks_t *t, tok_type_t type, size_t off, size_t len)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->v = xrealloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n] = (tok_t){.type = type, .off = off, .len = len};
    return t->n++;
}

flows_mustache_t *flows_mustache_compile(const char *tpl, size_t len, err_t *e)
{
    flows_mustache_t *m = xcalloc(1, sizeof *m);
    m->src = xmalloc(len + 1);
    memcpy(m->src, tpl, len);
    m->src[len] = 0;
    scan_t sc = {.s = m->src, .len = len};
    strcpy(sc.open, "{{");
    strcpy(sc.close, "}}");
    sc.olen = sc.clen = 2;

    toks_t t = {0};
    /* the current line: its text tokens, whether it has a tag, whether it has non-space */
    size_t *line = NULL, nline = 0, capline = 0;
    int has_tag = 0, non_space = 0;
    size_t *stack = NULL, nstack = 0, capstack = 0;

#define STRIP_LINE()                                                                               \
    do {                                                                                           \
        if (has_tag && !non_space)                                                                 \
            for (size_t i_ = 0; i_ < nline; i_++)                                                  \
                t.v[line[i_]].deleted = 1;                                                         \
        nline = 0;                                                                                 \
        has_tag = non_space = 0;                                                                   \
    } while (0)

    while (sc.pos < sc.len) {
        /* text up to the next opening tag, one token per line piece */
        const char *q = find(&sc, sc.pos, sc.open, sc.olen);
        size_t stop = q ? (size_t)(q - sc.s) : sc.len;
        while (sc.pos < stop) {
            const char *nl = memchr(sc.s + sc.pos, '\n', stop - sc.pos);
            size_t piece_end = nl ? (size_t)(nl - sc.s) + 1 : stop;
            size_t ti = push(&t, T_TEXT, sc.pos, piece_end - sc.pos);
            for (size_t i = sc.pos; i < piece_end; i++)
                if (!is_ws(sc.s[i])) {
                    non_space = 1;
                    break;
                }
            if (nline == capline) {
                capline = capline ? capline * 2 : 8;
                line = xrealloc(line, capline * sizeof *line);
            }
            line[nline++] = ti;
            sc.pos = piece_end;
            if (nl) STRIP_LINE();
        }
        if (!q) break;
        /* opening tag (mustache.js: open + \s*) */
        size_t tag_start = sc.pos;
        sc.pos += sc.olen;
        skip_ws(&sc);
        has_tag = 1;
        char type = 0;
        if (sc.pos < sc.len && sc.s[sc.pos] && strchr("#^/>{&=!", sc.s[sc.pos]))
            type = sc.s[sc.pos++];
        skip_ws(&sc);
        size_t voff, vlen;
        if (type == '=') {
            scan_until_ws(&sc, "=", 1, &voff, &vlen);
            scan_ws(&sc, "=", 1);
            size_t d1, d2;
            scan_until_ws(&sc, sc.close, sc.clen, &d1, &d2);
        } else if (type == '{') {
            char cc[20];
            cc[0] = '}';
            memcpy(cc + 1, sc.close, sc.clen + 1);
            scan_until_ws(&sc, cc, sc.clen + 1, &voff, &vlen);
            scan_ws(&sc, "}", 1);
            size_t d1, d2;
            scan_until_ws(&sc, sc.close, sc.clen, &d1, &d2);
            type = '&';
        } else {
            scan_until_ws(&sc, sc.close, sc.clen, &voff, &vlen);
        }
        if (!scan_ws(&sc, sc.close, sc.clen)) {
            err_set(e, ERR_INVALID_ARGUMENT, "Unclosed tag at %zu", sc.pos);
            goto fail;
        }
        switch (type) {
        case '#':
        case '^': {
            size_t ti = push(&t, type == '#' ? T_SECTION : T_INVERTED, voff, vlen);
            if (nstack == capstack) {
                capstack = capstack ? capstack * 2 : 8;
                stack = xrealloc(stack, capstack * sizeof *stack);
            }
            stack[nstack++] = ti;
            if ((int)nstack > m->depth) m->depth = (int)nstack;
            break;
        }
        case '/': {
            if (!nstack) {
                err_set(e, ERR_INVALID_ARGUMENT, "Unopened section \"%.*s\" at %zu", (int)vlen,
                        sc.s + voff, tag_start);
                goto fail;
            }
            tok_t *open = &t.v[stack[--nstack]];
            if (open->len != vlen || memcmp(sc.s + open->off, sc.s + voff, vlen) != 0) {
                err_set(e, ERR_INVALID_ARGUMENT, "Unclosed section \"%.*s\" at %zu", (int)open->len,
                        sc.s + open->off, tag_start);
                goto fail;
            }
            push(&t, T_CLOSE, voff, vlen);
            break;
        }
        case 0:
            push(&t, T_NAME, voff, vlen);
            non_space = 1;
            break;
        case '&':
            push(&t, T_RAW, voff, vlen);
            non_space = 1;
            break;
        case '=': {
            push(&t, T_SKIP, voff, vlen);
            if (set_tags(&sc, sc.s + voff, vlen, e) < 0) goto fail;
            break;
        }
        default: /* '!' comment, '>' partial */
            push(&t, T_SKIP, voff, vlen);
            break;
        }
    }
    STRIP_LINE();
    if (nstack) {
        tok_t *open = &t.v[stack[nstack - 1]];
        err_set(e, ERR_INVALID_ARGUMENT, "Unclosed section \"%.*s\" at %zu", (int)open->len,
                sc.s + open->off, sc.pos);
        goto fail;
    }
#undef STRIP_LINE

    /* squash: drop deleted and skipped tokens, merge adjacent text, link section ends */
    m->toks = xcalloc(t.n ? t.n : 1, sizeof *m->toks);
    nstack = 0;
    for (size_t i = 0; i < t.n; i++) {
        tok_t *k = &t.v[i];
        if (k->deleted || k->type == T_SKIP) continue;
        if (k->type == T_TEXT && m->n && m->toks[m->n - 1].type == T_TEXT &&
            m->toks[m->n - 1].off + m->toks[m->n - 1].len == k->off) {
            m->toks[m->n - 1].len += k->len;
            continue;
        }
        if (k->type == T_CLOSE) {
            m->toks[stack[--nstack]].end = m->n;
            continue;
        }
        if (k->type == T_SECTION || k->type == T_INVERTED) stack[nstack++] = m->n;
        m->toks[m->n++] = *k;
    }
    free(t.v);
    free(line);
    free(stack);
    return m;
fail:
    free(t.v);
    free(line);
    free(stack);
    flows_mustache_free(m);
    return NULL;
}

void flows_mustache_free(flows_mustache_t *m)
{
    if (!m) return;
    free(m->src);
    free(m->toks);
    free(m);
}

/* ---- the renderer ---- */

typedef struct {
    const flows_mustache_t *m;
    const flows_mustache_opts_t *o;
    json_t **stack;
    int n, base;
    json_t *temps; /* values made during the render (lengths, callback results) */
    buf_t *out;
} render_t;

static json_t *keep(render_t *r, json_t *v)
{
    if (!v) return NULL;
    if (!r->temps) r->temps = json_array();
    json_array_append_new(r->temps, v);
    return v;
}

static size_t js_length(const char *s, size_t n)
{
    /* UTF-16 code units, as String.prototype.length counts */
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80) continue;
        units += c >= 0xF0 ? 2 : 1;
    }
    return units;
}

/* One property step: *hit says whether the property exists (JS `in`, or own property of
 * a string primitive). Returns a borrowed value (possibly a temp). */
static json_t *prop(render_t *r, json_t *v, const char *k, size_t kl, int *hit)
{
    *hit = 0;
    if (!v) return NULL;
    if (json_is_object(v)) {
        json_t *x = json_object_getn(v, k, kl);
        *hit = x != NULL;
        return x;
    }
    if (json_is_array(v) || json_is_string(v)) {
        if (kl == 6 && memcmp(k, "length", 6) == 0) {
            *hit = 1;
            size_t n = json_is_array(v) ? json_array_size(v)
                                        : js_length(json_string_value(v), json_string_length(v));
            return keep(r, json_integer((json_int_t)n));
        }
        if (kl == 0 || kl > 9) return NULL;
        size_t idx = 0;
        for (size_t i = 0; i < kl; i++) {
            if (!isdigit((unsigned char)k[i])) return NULL;
            idx = idx * 10 + (size_t)(k[i] - '0');
        }
        if (kl > 1 && k[0] == '0') return NULL;
        if (json_is_array(v)) {
            json_t *x = json_array_get(v, idx);
            *hit = x != NULL;
            return x;
        }
        /* a string's character (ASCII-exact; a UTF-8 character for multibyte text) */
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), pos = 0, c = 0;
        while (pos < n && c < idx) {
            pos++;
            while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80)
                pos++;
            c++;
        }
        if (pos >= n) return NULL;
        size_t e = pos + 1;
        while (e < n && ((unsigned char)s[e] & 0xC0) == 0x80)
            e++;
        *hit = 1;
        return keep(r, json_stringn(s + pos, e - pos));
    }
    return NULL;
}

/* mustache.js Context.lookup, then the caller's callback. NULL = undefined. */
static json_t *lookup(render_t *r, const char *name, size_t nl)
{
    if (nl == 1 && name[0] == '.') return r->n ? r->stack[r->n - 1] : NULL;
    const char *dot = memchr(name, '.', nl);
    for (int d = r->n - 1; d >= 0; d--) {
        json_t *v = r->stack[d];
        int hit = 0;
        if (dot && dot != name) {
            const char *p = name, *end = name + nl;
            while (v && p <= end) {
                const char *q = memchr(p, '.', (size_t)(end - p));
                if (!q) q = end;
                int last = q == end;
                int h;
                v = prop(r, v, p, (size_t)(q - p), &h);
                if (last) hit = h;
                p = q + 1;
                if (last) break;
            }
        } else {
            v = prop(r, v, name, nl, &hit);
        }
        if (hit) return v;
    }
    if (r->o && r->o->lookup) {
        char tmp[256];
        if (nl < sizeof tmp) {
            memcpy(tmp, name, nl);
            tmp[nl] = 0;
            return keep(r, r->o->lookup(r->o->ud, tmp));
        }
    }
    return NULL;
}

static int truthy(const json_t *v)
{
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
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

static void put_escaped(render_t *r, const char *s, size_t n, int html, int json)
{
    buf_t *o = r->out;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char hex[8];
        if (json == FLOWS_MUSTACHE_JSON_NR) {
            switch (c) {
            case '\\':
                rep = "\\\\";
                break;
            case '\n':
                rep = "\\n";
                break;
            case '\t':
                rep = "\\t";
                break;
            case '\r':
                rep = "\\r";
                break;
            case '\f':
                rep = "\\f";
                break;
            case '\b':
                rep = "\\b";
                break;
            }
        } else if (json == FLOWS_MUSTACHE_JSON_FULL) {
            switch (c) {
            case '\\':
                rep = "\\\\";
                break;
            case '"':
                rep = "\\\"";
                break;
            case '\n':
                rep = "\\n";
                break;
            case '\t':
                rep = "\\t";
                break;
            case '\r':
                rep = "\\r";
                break;
            case '\f':
                rep = "\\f";
                break;
            case '\b':
                rep = "\\b";
                break;
            default:
                if (c < 0x20) {
                    snprintf(hex, sizeof hex, "\\u%04x", c);
                    rep = hex;
                }
            }
        }
        if (!rep && html) {
            switch (c) {
            case '&':
                rep = "&amp;";
                break;
            case '<':
                rep = "&lt;";
                break;
            case '>':
                rep = "&gt;";
                break;
            case '"':
                rep = "&quot;";
                break;
            case '\'':
                rep = "&#39;";
                break;
            case '/':
                rep = "&#x2F;";
                break;
            case '`':
                rep = "&#x60;";
                break;
            case '=':
                rep = "&#x3D;";
                break;
            }
        }
        if (rep) {
            if (run) buf_append(o, s + i - run, run);
            run = 0;
            buf_puts(o, rep);
        } else {
            run++;
        }
    }
    if (run) buf_append(o, s + n - run, run);
}

static void put_value(render_t *r, json_t *v, int html)
{
    if (!v || json_is_null(v)) return;
    if (json_is_integer(v) || json_is_real(v)) { /* numbers are never escaped */
        flows_mustache_str(v, r->out);
        return;
    }
    int json = 0;
    if (r->o && json_is_string(v)) {
        if (r->o->json == FLOWS_MUSTACHE_JSON_FULL)
            json = FLOWS_MUSTACHE_JSON_FULL;
        else if (r->o->json == FLOWS_MUSTACHE_JSON_NR && r->n == r->base)
            json = FLOWS_MUSTACHE_JSON_NR;
    }
    if (r->o && r->o->no_html) html = 0;
    if (json_is_string(v)) {
        put_escaped(r, json_string_value(v), json_string_length(v), html, json);
        return;
    }
    if (!html) {
        flows_mustache_str(v, r->out);
        return;
    }
    buf_t tmp;
    buf_init(&tmp);
    flows_mustache_str(v, &tmp);
    put_escaped(r, tmp.data ? tmp.data : "", tmp.len, 1, 0);
    buf_free(&tmp);
}

static void render_range(render_t *r, size_t from, size_t to)
{
    const flows_mustache_t *m = r->m;
    for (size_t i = from; i < to; i++) {
        const tok_t *t = &m->toks[i];
        const char *name = m->src + t->off;
        switch (t->type) {
        case T_TEXT:
            buf_append(r->out, name, t->len);
            break;
        case T_NAME:
            put_value(r, lookup(r, name, t->len), 1);
            break;
        case T_RAW:
            put_value(r, lookup(r, name, t->len), 0);
            break;
        case T_SECTION: {
            json_t *v = lookup(r, name, t->len);
            if (truthy(v)) {
                if (json_is_array(v)) {
                    size_t k;
                    json_t *x;
                    json_array_foreach(v, k, x)
                    {
                        r->stack[r->n++] = x;
                        render_range(r, i + 1, t->end);
                        r->n--;
                    }
                } else if (json_is_boolean(v)) {
                    render_range(r, i + 1, t->end);
                } else {
                    r->stack[r->n++] = v;
                    render_range(r, i + 1, t->end);
                    r->n--;
                }
            }
            i = t->end - 1;
            break;
        }
        case T_INVERTED: {
            json_t *v = lookup(r, name, t->len);
            if (!truthy(v) || (json_is_array(v) && json_array_size(v) == 0))
                render_range(r, i + 1, t->end);
            i = t->end - 1;
            break;
        }
        default:
            break;
        }
    }
}

void flows_mustache_render(const flows_mustache_t *m, json_t *const *views, int nviews,
                           const flows_mustache_opts_t *opts, buf_t *out)
{
    json_t *local[16];
    int cap = nviews + m->depth + 1;
    render_t r = {.m = m, .o = opts, .out = out, .base = nviews};
    r.stack = cap <= 16 ? local : xmalloc((size_t)cap * sizeof *r.stack);
    for (int i = 0; i < nviews; i++)
        r.stack[i] = views[i];
    r.n = nviews;
    render_range(&r, 0, m->n);
    if (out->data == NULL) buf_append(out, "", 0);
    json_decref(r.temps);
    if (r.stack != local) free(r.stack);
}

char *flows_mustache_render_str(const char *tpl, json_t *view, const flows_mustache_opts_t *opts,
                                err_t *e)
{
    flows_mustache_t *m = flows_mustache_compile(tpl, strlen(tpl), e);
    if (!m) return NULL;
    buf_t b;
    buf_init(&b);
    flows_mustache_render(m, &view, view ? 1 : 0, opts, &b);
    flows_mustache_free(m);
    return buf_steal(&b);
}
