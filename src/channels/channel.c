/* channel.c: the adapter registry and the small helpers adapters share. */
#include "channels/channel.h"
#include "base/buf.h"
#include "base/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void channel_http_free(channel_http_t *h)
{
    free(h->url);
    free(h->body);
    for (int i = 0; i < CHANNEL_MAX_HEADERS && h->headers[i]; i++)
        free(h->headers[i]);
    memset(h, 0, sizeof *h);
}

void channel_http_set(channel_http_t *h, const char *method, const char *url, const char *ctype,
                      const char *body)
{
    snprintf(h->method, sizeof h->method, "%s", method);
    free(h->url);
    h->url = xstrdup(url);
    free(h->body);
    h->body = body ? xstrdup(body) : NULL;
    h->body_len = body ? strlen(body) : 0;
    if (ctype) channel_http_header(h, "Content-Type: %s", ctype);
}

void channel_http_header(channel_http_t *h, const char *fmt, ...)
{
    int i = 0;
    while (i < CHANNEL_MAX_HEADERS - 1 && h->headers[i])
        i++;
    if (i == CHANNEL_MAX_HEADERS - 1) return; /* adapters use a handful; the last stays NULL */
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->headers[i] = xstrdup(line);
}

void channel_events_free(channel_events_t *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        json_decref(ev->items[i].contact_message);
    free(ev->items);
    memset(ev, 0, sizeof *ev);
}

channel_event_t *channel_events_add(channel_events_t *ev)
{
    if (ev->n == ev->cap) {
        ev->cap = ev->cap ? ev->cap * 2 : 4;
        ev->items = xrealloc(ev->items, ev->cap * sizeof *ev->items);
    }
    channel_event_t *e = &ev->items[ev->n++];
    memset(e, 0, sizeof *e);
    return e;
}

const char *channel_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

const char *channel_str_or(json_t *o, const char *key)
{
    const char *s = channel_str(o, key);
    return s ? s : "";
}

char *channel_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
}

int channel_too_long(err_t *e, const char *channel, const char *what, size_t have, size_t max,
                     const char *unit)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "%s %s is limited to %zu %s, got %zu", channel, what,
                   max, unit, have);
}

void channel_result_set(channel_result_t *r, channel_outcome_t outcome, const char *code,
                        const char *description)
{
    r->outcome = outcome;
    snprintf(r->reason_code, sizeof r->reason_code, "%s", code);
    utf8_copy(r->description, sizeof r->description, description ? description : "");
}

int channel_id_text(json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v)) {
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    }
    if (json_is_string(v) && json_string_length(v)) {
        utf8_copy(out, cap, json_string_value(v));
        return 0;
    }
    return -1;
}

/* Defined in each adapter file. */
extern const channel_t channel_whatsapp, channel_messenger, channel_instagram, channel_viber,
    channel_telegram, channel_rcs;

const channel_t *channel_get(convo_channel_t ch)
{
    switch (ch) {
    case CONVO_WHATSAPP:
        return &channel_whatsapp;
    case CONVO_MESSENGER:
        return &channel_messenger;
    case CONVO_INSTAGRAM:
        return &channel_instagram;
    case CONVO_VIBERBM:
        return &channel_viber;
    case CONVO_TELEGRAM:
        return &channel_telegram;
    case CONVO_RCS:
        return &channel_rcs;
    default:
        return NULL;
    }
}
