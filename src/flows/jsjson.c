/* jsjson.c: JSON.stringify as V8 prints it (see jsjson.h). Numbers follow ECMA-262
 * Number::toString: shortest digits that round-trip, fixed notation for 1e-7 <= |x| < 1e21,
 * exponential ("1e+21", "1.5e-7") otherwise. */
#include "flows/jsjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void flows_jsjson_number(double d, char *out, size_t cap)
{
    if (isnan(d) || isinf(d)) { /* JSON.stringify prints these as null */
        snprintf(out, cap, "null");
        return;
    }
    if (d == 0) {
        snprintf(out, cap, "0");
        return;
    }
    /* shortest %.*e that reads back as d: digits and exponent */
    char tmp[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec, d);
    int neg = tmp[0] == '-';
    char digits[24];
    int k = 0;
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[k++] = *p;
    digits[k] = 0;
    int e10 = atoi(p + 1); /* d = 0.digits * 10^(n) with n = e10 + 1 */
    int n = e10 + 1;
    char *o = out;
    size_t left = cap;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(o, left, __VA_ARGS__);                                                   \
        if (w_ < 0 || (size_t)w_ >= left) return;                                                  \
        o += w_;                                                                                   \
        left -= (size_t)w_;                                                                        \
    } while (0)
    if (neg) PUT("-");
    if (k <= n && n <= 21) {
        PUT("%s", digits);
        for (int i = k; i < n; i++)
            PUT("0");
    } else if (0 < n && n <= 21) {
        PUT("%.*s.%s", n, digits, digits + n);
    } else if (-6 < n && n <= 0) {
        PUT("0.");
        for (int i = 0; i < -n; i++)
            PUT("0");
        PUT("%s", digits);
    } else {
        if (k == 1)
            PUT("%c", digits[0]);
        else
            PUT("%c.%s", digits[0], digits + 1);
        PUT("e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
#undef PUT
}

static void put_string(buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c < 0x20) {
                u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4],
                u[5] = hex[c & 15], u[6] = 0;
                esc = u;
            }
        }
        if (esc) {
            buf_append(b, s + i - run, run);
            run = 0;
            buf_puts(b, esc);
        } else {
            run++;
        }
    }
    buf_append(b, s + len - run, run);
    buf_append(b, "\"", 1);
}

static void newline(buf_t *b, int indent, int level)
{
    buf_append(b, "\n", 1);
    for (int i = 0; i < indent * level; i++)
        buf_append(b, " ", 1);
}

static void put_value(buf_t *b, const json_t *v, int indent, int level)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (json_object_size(v) == 0) {
            buf_puts(b, "{}");
            return;
        }
        buf_append(b, "{", 1);
        const char *k;
        size_t klen;
        json_t *x;
        int first = 1;
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            if (!first) buf_append(b, ",", 1);
            first = 0;
            if (indent) newline(b, indent, level + 1);
            put_string(b, k, klen);
            buf_puts(b, indent ? ": " : ":");
            put_value(b, x, indent, level + 1);
        }
        if (indent) newline(b, indent, level);
        buf_append(b, "}", 1);
        return;
    }
    case JSON_ARRAY: {
        if (json_array_size(v) == 0) {
            buf_puts(b, "[]");
            return;
        }
        buf_append(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) buf_append(b, ",", 1);
            if (indent) newline(b, indent, level + 1);
            put_value(b, json_array_get(v, i), indent, level + 1);
        }
        if (indent) newline(b, indent, level);
        buf_append(b, "]", 1);
        return;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        buf_printf(b, "%lld", (long long)json_integer_value(v));
        return;
    case JSON_REAL:
        flows_jsjson_number(json_real_value(v), num, sizeof num);
        buf_puts(b, num);
        return;
    case JSON_TRUE:
        buf_puts(b, "true");
        return;
    case JSON_FALSE:
        buf_puts(b, "false");
        return;
    default:
        buf_puts(b, "null");
    }
}

void flows_jsjson_append(buf_t *b, const json_t *v, int indent)
{
    if (indent > 10) indent = 10; /* as JSON.stringify */
    if (indent < 0) indent = 0;
    put_value(b, v, indent, 0);
}

char *flows_jsjson_stringify(const json_t *v, int indent)
{
    buf_t b;
    buf_init(&b);
    flows_jsjson_append(&b, v, indent);
    return buf_steal(&b);
}
