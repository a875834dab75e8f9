/* render.c: AppMessage -> plain text (see render.h). */
#include "channels/render.h"
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void line(buf_t *b, const char *s)
{
    if (!*s) return;
    if (b->len) buf_puts(b, "\n");
    buf_puts(b, s);
}

char *channel_render_choice(json_t *c)
{
    buf_t b;
    buf_init(&b);
    json_t *v;
    if ((v = json_object_get(c, "text_message")))
        buf_puts(&b, str(v, "text"));
    else if ((v = json_object_get(c, "url_message")))
        buf_printf(&b, "%s: %s", str(v, "title"), str(v, "url"));
    else if ((v = json_object_get(c, "call_message")))
        buf_printf(&b, "%s: %s", str(v, "title"), str(v, "phone_number"));
    else if ((v = json_object_get(c, "location_message")))
        buf_printf(
            &b, "%s: https://maps.google.com/?q=%g,%g", str(v, "title"),
            json_number_value(json_object_get(json_object_get(v, "coordinates"), "latitude")),
            json_number_value(json_object_get(json_object_get(v, "coordinates"), "longitude")));
    else if ((v = json_object_get(c, "calendar_message")))
        buf_printf(&b, "%s: %s", str(v, "title"), str(v, "fallback_url"));
    else if ((v = json_object_get(c, "share_location_message")))
        buf_printf(&b, "%s: %s", str(v, "title"), str(v, "fallback_url"));
    return buf_steal(&b);
}

static void choices(buf_t *b, json_t *arr)
{
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
    {
        char *t = channel_render_choice(c);
        char num[24];
        snprintf(num, sizeof num, "%zu. ", i + 1);
        if (b->len) buf_puts(b, "\n");
        buf_puts(b, num);
        buf_puts(b, t);
        free(t);
    }
}

static void card(buf_t *b, json_t *c)
{
    line(b, str(c, "title"));
    line(b, str(c, "description"));
    line(b, str(json_object_get(c, "media_message"), "url"));
    choices(b, json_object_get(c, "choices"));
}

char *channel_render_text(json_t *m, err_t *e)
{
    buf_t b;
    buf_init(&b);
    json_t *v;
    if ((v = json_object_get(m, "text_message"))) {
        buf_puts(&b, str(v, "text"));
    } else if ((v = json_object_get(m, "media_message"))) {
        buf_puts(&b, str(v, "url"));
    } else if ((v = json_object_get(m, "choice_message"))) {
        line(&b, str(json_object_get(v, "text_message"), "text"));
        choices(&b, json_object_get(v, "choices"));
    } else if ((v = json_object_get(m, "card_message"))) {
        card(&b, v);
    } else if ((v = json_object_get(m, "carousel_message"))) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(v, "cards"), i, c)
        {
            if (b.len) buf_puts(&b, "\n"); /* line() adds the second: one blank line */
            card(&b, c);
        }
        if (json_array_size(json_object_get(v, "choices"))) buf_puts(&b, "\n");
        choices(&b, json_object_get(v, "choices"));
    } else if ((v = json_object_get(m, "location_message"))) {
        json_t *co = json_object_get(v, "coordinates");
        line(&b, str(v, "title"));
        line(&b, str(v, "label"));
        buf_printf(&b, "%shttps://maps.google.com/?q=%g,%g", b.len ? "\n" : "",
                   json_number_value(json_object_get(co, "latitude")),
                   json_number_value(json_object_get(co, "longitude")));
    } else if ((v = json_object_get(m, "contact_info_message"))) {
        size_t i;
        json_t *it;
        line(&b, str(json_object_get(v, "name"), "full_name"));
        json_array_foreach(json_object_get(v, "phone_numbers"), i, it)
            line(&b, str(it, "phone_number"));
        json_array_foreach(json_object_get(v, "email_addresses"), i, it)
            line(&b, str(it, "email_address"));
        json_array_foreach(json_object_get(v, "urls"), i, it) line(&b, str(it, "url"));
    } else if ((v = json_object_get(m, "list_message"))) {
        size_t i, k, n = 0;
        json_t *sec, *it;
        line(&b, str(v, "title"));
        line(&b, str(v, "description"));
        json_array_foreach(json_object_get(v, "sections"), i, sec)
        {
            line(&b, str(sec, "title"));
            json_array_foreach(json_object_get(sec, "items"), k, it)
            {
                json_t *ch = json_object_get(it, "choice"), *pr = json_object_get(it, "product");
                buf_printf(&b, "%s%zu. %s", b.len ? "\n" : "", ++n,
                           ch ? str(ch, "title") : str(pr, "id"));
            }
        }
    } else {
        buf_free(&b);
        err_set(e, ERR_INVALID_ARGUMENT,
                "message type has no plain-text form on this channel (templates need a "
                "channel template)");
        return NULL;
    }
    return buf_steal(&b);
}
