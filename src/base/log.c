/* log.c: JSON-lines logger. Lines are built in a stack buffer and written atomically. */
#include "base/log.h"
#include "base/clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error", "off"};

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(s, log_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    return -1;
}

void log_set_level(log_level_t level)
{
    atomic_store(&log_level, level);
}

int log_enabled(log_level_t level)
{
    return (int)level >= atomic_load(&log_level) && level != LOG_OFF;
}

typedef struct {
    char buf[4096];
    size_t len;
} log_line_t;

static void line_raw(log_line_t *l, const char *s, size_t n)
{
    if (n > sizeof l->buf - 3 - l->len) n = sizeof l->buf - 3 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_str(log_line_t *l, const char *s)
{
    line_raw(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p;
            line_raw(l, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            line_raw(l, esc, 6);
        } else {
            line_raw(l, (const char *)p, 1);
        }
    }
    line_raw(l, "\"", 1);
}

static void line_begin(log_line_t *l, log_level_t level, const char *msg)
{
    char ts[40];
    clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
    l->len = 0;
    line_raw(l, "{\"ts\":", 6);
    line_str(l, ts);
    line_raw(l, ",\"level\":", 9);
    line_str(l, log_names[level]);
    line_raw(l, ",\"msg\":", 7);
    line_str(l, msg);
}

static void line_end(log_line_t *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w;
}

void log_fields(log_level_t level, const char *msg, ...)
{
    if (!log_enabled(level)) return;
    log_line_t l;
    line_begin(&l, level, msg);
    va_list ap;
    va_start(ap, msg);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        int raw = k[0] == '#';
        line_raw(&l, ",", 1);
        line_str(&l, raw ? k + 1 : k);
        line_raw(&l, ":", 1);
        if (!v)
            line_raw(&l, "null", 4);
        else if (raw)
            line_raw(&l, v, strlen(v));
        else
            line_str(&l, v);
    }
    va_end(ap);
    line_end(&l);
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (!log_enabled(level)) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line_t l;
    line_begin(&l, level, msg);
    line_end(&l);
}
