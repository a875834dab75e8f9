/* telegram.c: the TELEGRAM channel adapter (Telegram Bot API). It owns the translation
 * between Parley's AppMessage/ContactMessage shapes and the Bot API: which method sends
 * which message type (sendMessage, sendPhoto, sendLocation, ...), inline keyboards for
 * choices, the answers of the Bot API ({"ok":..}) mapped to outcomes and Sinch reason
 * codes, the X-Telegram-Bot-Api-Secret-Token check, Update parsing, getMe as the
 * credential check and setWebhook as a helper. Pure translation: no I/O here (see
 * channel.h); docs/channels.md documents every mapping. */
#include "base/buf.h"
#include "base/jsonx.h"
#include "base/sec.h"
#include "channels/channel.h"
#include "base/utf8.h"
#include "channels/render.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TG_TEXT_MAX     4096 /* sendMessage text, characters */
#define TG_CAPTION_MAX  1024 /* media captions, characters */
#define TG_CALLBACK_MAX 64   /* callback_data, bytes */
#define TG_BUTTONS_MAX  100  /* inline keyboard buttons per message */
#define TG_VCARD_MAX    2048 /* sendContact vcard, bytes */

int channel_telegram_set_webhook(const channel_send_t *in, const char *url, const char *secret,
                                 channel_http_t *out, err_t *e);

/* ---- small helpers ---- */

static int prop_true(json_t *props, const char *key)
{
    json_t *v = json_object_get(props, key);
    if (json_is_true(v)) return 1;
    const char *s = json_string_value(v);
    return s && (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes"));
}

/* The credential object: {"token":..}, or the same under "telegram_credentials". */
static const char *tg_token(json_t *cred, err_t *e)
{
    json_t *inner = json_object_get(cred, "telegram_credentials");
    const char *t = channel_str(json_is_object(inner) ? inner : cred, "token");
    if (!t || !*t)
        return err_set(e, ERR_FAILED_PRECONDITION, "TELEGRAM credential needs a bot token"), NULL;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != ':' && *p != '_' && *p != '-')
            return err_set(e, ERR_FAILED_PRECONDITION,
                           "TELEGRAM bot token has a character a token cannot have"),
                   NULL;
    return t;
}

/* {base}/bot<token>/<method>; trailing slashes of the base are dropped. */
static char *tg_url(const char *base, const char *token, const char *method)
{
    buf_t b;
    buf_init(&b);
    if (!base || !*base) base = "https://api.telegram.org";
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    buf_append(&b, base, n);
    buf_printf(&b, "/bot%s/%s", token, method);
    return buf_steal(&b);
}

/* Lower-case extension of the URL's last path segment ("" when none or too long). */
static void url_ext(const char *url, char *out, size_t cap)
{
    size_t end = strcspn(url, "?#");
    size_t start = 0;
    for (size_t i = 0; i < end; i++)
        if (url[i] == '/') start = i + 1;
    size_t dot = end;
    for (size_t i = start; i < end; i++)
        if (url[i] == '.') dot = i;
    out[0] = '\0';
    if (dot == end || end - dot - 1 >= cap) return;
    size_t n = end - dot - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)url[dot + 1 + i]);
    out[n] = '\0';
}

/* The send method and its field for a media URL. The Bot API fetches URLs itself: photos
 * must be JPEG/PNG/WebP, videos MP4, audio MP3/M4A; anything else goes as a document. */
static const char *tg_media_method(const char *url, const char **field)
{
    char ext[8];
    url_ext(url, ext, sizeof ext);
    if (!strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png") || !strcmp(ext, "webp"))
        return *field = "photo", "sendPhoto";
    if (!strcmp(ext, "mp4")) return *field = "video", "sendVideo";
    if (!strcmp(ext, "mp3") || !strcmp(ext, "m4a")) return *field = "audio", "sendAudio";
    return *field = "document", "sendDocument";
}

static void maps_url(json_t *coords, char *out, size_t cap)
{
    snprintf(out, cap, "https://maps.google.com/?q=%.15g,%.15g",
             json_number_value(json_object_get(coords, "latitude")),
             json_number_value(json_object_get(coords, "longitude")));
}

/* ---- inline keyboards ---- */

typedef struct {
    json_t *rows; /* [[button], [button], ...]: one button per row */
    buf_t extra;  /* call choices, which inline buttons cannot dial: lines for the text */
} tg_kb_t;

static void kb_init(tg_kb_t *kb)
{
    kb->rows = json_array();
    buf_init(&kb->extra);
}

static void kb_free(tg_kb_t *kb)
{
    json_decref(kb->rows);
    buf_free(&kb->extra);
}

static int kb_add(tg_kb_t *kb, json_t *c, err_t *e)
{
    json_t *v, *btn = NULL;
    char url[128];
    const char *pb = channel_str(c, "postback_data");
    if ((v = json_object_get(c, "text_message"))) {
        const char *t = channel_str_or(v, "text");
        char data[TG_CALLBACK_MAX + 1];
        if (pb && *pb) {
            if (strlen(pb) > TG_CALLBACK_MAX)
                return channel_too_long(e, "TELEGRAM", "callback_data (choice postback_data)",
                                        strlen(pb), TG_CALLBACK_MAX, "bytes");
            utf8_copy(data, sizeof data, pb);
        } else {
            utf8_copy(data, sizeof data, t); /* the title as data, cut to 64 bytes */
        }
        btn = json_pack("{s:s,s:s}", "text", t, "callback_data", data);
    } else if ((v = json_object_get(c, "url_message"))) {
        btn = json_pack("{s:s,s:s}", "text", channel_str_or(v, "title"), "url",
                        channel_str_or(v, "url"));
    } else if ((v = json_object_get(c, "location_message"))) {
        maps_url(json_object_get(v, "coordinates"), url, sizeof url);
        btn = json_pack("{s:s,s:s}", "text", channel_str_or(v, "title"), "url", url);
    } else if ((v = json_object_get(c, "calendar_message")) ||
               (v = json_object_get(c, "share_location_message"))) {
        btn = json_pack("{s:s,s:s}", "text", channel_str_or(v, "title"), "url",
                        channel_str_or(v, "fallback_url"));
    } else if ((v = json_object_get(c, "call_message"))) {
        if (kb->extra.len) buf_puts(&kb->extra, "\n");
        buf_printf(&kb->extra, "%s: %s", channel_str_or(v, "title"),
                   channel_str_or(v, "phone_number"));
        return 0;
    } else {
        return err_set(e, ERR_INVALID_ARGUMENT, "TELEGRAM cannot carry this choice type");
    }
    if (json_array_size(kb->rows) >= TG_BUTTONS_MAX) {
        json_decref(btn);
        return err_set(e, ERR_INVALID_ARGUMENT, "TELEGRAM inline keyboards hold at most %d buttons",
                       TG_BUTTONS_MAX);
    }
    json_array_append_new(kb->rows, json_pack("[o]", btn));
    return 0;
}

static int kb_add_all(tg_kb_t *kb, json_t *choices, err_t *e)
{
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) if (kb_add(kb, c, e) < 0) return -1;
    return 0;
}

static void kb_attach(tg_kb_t *kb, json_t *o)
{
    if (json_array_size(kb->rows))
        json_object_set_new(o, "reply_markup", json_pack("{s:O}", "inline_keyboard", kb->rows));
}

/* text, then the call lines the keyboard could not carry. malloc'd. */
static char *with_extra(const char *text, tg_kb_t *kb)
{
    buf_t b;
    buf_init(&b);
    buf_puts(&b, text);
    if (kb->extra.len) {
        if (b.len) buf_puts(&b, "\n");
        buf_puts(&b, kb->extra.data);
    }
    return buf_steal(&b);
}

/* ---- message builders: each fills o (which may already hold chat_id) ---- */

static int set_text(json_t *o, const char *text, json_t *props, err_t *e)
{
    size_t n = utf8_len(text);
    if (n == 0) return err_set(e, ERR_INVALID_ARGUMENT, "TELEGRAM cannot send an empty text");
    if (n > TG_TEXT_MAX)
        return channel_too_long(e, "TELEGRAM", "message text", n, TG_TEXT_MAX, "characters");
    json_object_set_new(o, "text", json_string(text));
    if (prop_true(props, "TELEGRAM_DISABLE_LINK_PREVIEW"))
        json_object_set_new(o, "link_preview_options", json_pack("{s:b}", "is_disabled", 1));
    return 0;
}

static int set_caption(json_t *o, const char *caption, err_t *e)
{
    size_t n = utf8_len(caption);
    if (n > TG_CAPTION_MAX)
        return channel_too_long(e, "TELEGRAM", "caption", n, TG_CAPTION_MAX, "characters");
    if (n) json_object_set_new(o, "caption", json_string(caption));
    return 0;
}

static int build_choice(json_t *o, json_t *v, json_t *m, json_t *props, err_t *e)
{
    tg_kb_t kb;
    kb_init(&kb);
    int rc = -1;
    char *text = NULL, *base = NULL;
    if (kb_add_all(&kb, json_object_get(v, "choices"), e) < 0) goto out;
    const char *t = channel_str(json_object_get(v, "text_message"), "text");
    if (!t || !*t) {
        /* The Bot API needs a text to hang the keyboard on: the plain-text form. */
        if (!(base = channel_render_text(m, e))) goto out;
        t = base;
    }
    text = with_extra(t, &kb);
    if (set_text(o, text, props, e) < 0) goto out;
    kb_attach(&kb, o);
    rc = 0;
out:
    free(text);
    free(base);
    kb_free(&kb);
    return rc;
}

static void card_text(buf_t *b, json_t *card, int with_media_url)
{
    const char *parts[3] = {
        channel_str_or(card, "title"), channel_str_or(card, "description"),
        with_media_url ? channel_str_or(json_object_get(card, "media_message"), "url") : ""};
    for (int i = 0; i < 3; i++) {
        if (!*parts[i]) continue;
        if (b->len) buf_puts(b, "\n");
        buf_puts(b, parts[i]);
    }
}

static int build_card(json_t *o, json_t *card, json_t *props, const char **method, err_t *e)
{
    tg_kb_t kb;
    kb_init(&kb);
    buf_t b;
    buf_init(&b);
    int rc = -1;
    char *text = NULL;
    if (kb_add_all(&kb, json_object_get(card, "choices"), e) < 0) goto out;
    const char *media = channel_str(json_object_get(card, "media_message"), "url");
    card_text(&b, card, 0);
    text = with_extra(b.data ? b.data : "", &kb);
    if (media && *media) {
        const char *field;
        *method = tg_media_method(media, &field);
        json_object_set_new(o, field, json_string(media));
        if (set_caption(o, text, e) < 0) goto out;
    } else {
        *method = "sendMessage";
        if (set_text(o, text, props, e) < 0) goto out;
    }
    kb_attach(&kb, o);
    rc = 0;
out:
    free(text);
    buf_free(&b);
    kb_free(&kb);
    return rc;
}

/* Carousel: the cards as text (title, description, media link), every card's choices and
 * then the carousel's own choices as one keyboard. */
static int build_carousel(json_t *o, json_t *v, json_t *props, err_t *e)
{
    tg_kb_t kb;
    kb_init(&kb);
    buf_t b;
    buf_init(&b);
    int rc = -1;
    char *text = NULL;
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(v, "cards"), i, card)
    {
        buf_t cb;
        buf_init(&cb);
        card_text(&cb, card, 1);
        if (cb.len) {
            if (b.len) buf_puts(&b, "\n\n");
            buf_puts(&b, cb.data);
        }
        buf_free(&cb);
        if (kb_add_all(&kb, json_object_get(card, "choices"), e) < 0) goto out;
    }
    if (kb_add_all(&kb, json_object_get(v, "choices"), e) < 0) goto out;
    text = with_extra(b.data ? b.data : "", &kb);
    if (set_text(o, text, props, e) < 0) goto out;
    kb_attach(&kb, o);
    rc = 0;
out:
    free(text);
    buf_free(&b);
    kb_free(&kb);
    return rc;
}

/* List: title and description as text, each choice item a callback button. Lists with
 * products have no keyboard form: they go as the plain-text rendering. */
static int build_list(json_t *o, json_t *v, json_t *m, json_t *props, err_t *e)
{
    size_t i, k;
    json_t *sec, *it;
    json_array_foreach(json_object_get(v, "sections"), i, sec)
    {
        json_array_foreach(json_object_get(sec, "items"), k, it)
        {
            if (!json_is_object(json_object_get(it, "choice"))) {
                char *text = channel_render_text(m, e);
                if (!text) return -1;
                int rc = set_text(o, text, props, e);
                free(text);
                return rc;
            }
        }
    }
    tg_kb_t kb;
    kb_init(&kb);
    buf_t b;
    buf_init(&b);
    int rc = -1;
    json_array_foreach(json_object_get(v, "sections"), i, sec)
    {
        json_array_foreach(json_object_get(sec, "items"), k, it)
        {
            json_t *ch = json_object_get(it, "choice");
            json_t *c = json_pack("{s:{s:s}}", "text_message", "text", channel_str_or(ch, "title"));
            const char *pb = channel_str(ch, "postback_data");
            if (pb) json_object_set_new(c, "postback_data", json_string(pb));
            int r = kb_add(&kb, c, e);
            json_decref(c);
            if (r < 0) goto out;
        }
    }
    card_text(&b, v, 0);
    if (set_text(o, b.data ? b.data : "", props, e) < 0) goto out;
    kb_attach(&kb, o);
    rc = 0;
out:
    buf_free(&b);
    kb_free(&kb);
    return rc;
}

/* vCard 3.0 value escaping (RFC 2426 section 4). */
static void vc_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == ',' || *s == ';')
            buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else if (*s != '\r')
            buf_append(b, s, 1);
    }
}

static void vc_line(buf_t *b, const char *name, const char *value)
{
    if (!value || !*value) return;
    buf_puts(b, name);
    buf_puts(b, ":");
    vc_escape(b, value);
    buf_puts(b, "\r\n");
}

static int build_contact(json_t *o, json_t *v, err_t *e)
{
    json_t *name = json_object_get(v, "name"), *phones = json_object_get(v, "phone_numbers");
    json_t *org = json_object_get(v, "organization"), *it;
    size_t i;
    const char *first = channel_str(name, "first_name"), *last = NULL;
    if (first && *first)
        last = channel_str(name, "last_name");
    else
        first = channel_str_or(name, "full_name");
    json_object_set_new(o, "phone_number",
                        json_string(channel_str_or(json_array_get(phones, 0), "phone_number")));
    json_object_set_new(o, "first_name", json_string(first));
    if (last && *last) json_object_set_new(o, "last_name", json_string(last));
    /* Telegram shows name and one number; a vCard carries the rest when there is more. */
    int more = json_array_size(phones) > 1 ||
               json_array_size(json_object_get(v, "email_addresses")) ||
               json_array_size(json_object_get(v, "urls")) || json_object_size(org) ||
               (channel_str(v, "birthday") && *channel_str(v, "birthday"));
    if (!more) return 0;
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "BEGIN:VCARD\r\nVERSION:3.0\r\n");
    vc_line(&b, "FN", channel_str_or(name, "full_name"));
    buf_puts(&b, "N:");
    vc_escape(&b, channel_str_or(name, "last_name"));
    buf_puts(&b, ";");
    vc_escape(&b, channel_str_or(name, "first_name"));
    buf_puts(&b, ";");
    vc_escape(&b, channel_str_or(name, "middle_name"));
    buf_puts(&b, ";");
    vc_escape(&b, channel_str_or(name, "prefix"));
    buf_puts(&b, ";");
    vc_escape(&b, channel_str_or(name, "suffix"));
    buf_puts(&b, "\r\n");
    json_array_foreach(phones, i, it) vc_line(&b, "TEL", channel_str(it, "phone_number"));
    json_array_foreach(json_object_get(v, "email_addresses"), i, it)
        vc_line(&b, "EMAIL", channel_str(it, "email_address"));
    json_array_foreach(json_object_get(v, "urls"), i, it)
        vc_line(&b, "URL", channel_str(it, "url"));
    if (org && (*channel_str_or(org, "company") || *channel_str_or(org, "department"))) {
        buf_puts(&b, "ORG:");
        vc_escape(&b, channel_str_or(org, "company"));
        if (*channel_str_or(org, "department")) {
            buf_puts(&b, ";");
            vc_escape(&b, channel_str_or(org, "department"));
        }
        buf_puts(&b, "\r\n");
    }
    vc_line(&b, "TITLE", channel_str(org, "title"));
    vc_line(&b, "BDAY", channel_str(v, "birthday"));
    buf_puts(&b, "END:VCARD");
    if (b.len > TG_VCARD_MAX) {
        size_t n = b.len;
        buf_free(&b);
        return channel_too_long(e, "TELEGRAM", "contact vcard", n, TG_VCARD_MAX, "bytes");
    }
    json_object_set_new(o, "vcard", json_string(b.data));
    buf_free(&b);
    return 0;
}

/* explicit_channel_message.TELEGRAM: a JSON string {"method":"sendX", ...params} (the
 * shape messages:transcode returns), sent as is to that method. */
static int build_explicit(json_t *o, const char *raw, const char **method, err_t *e)
{
    json_error_t je;
    json_t *x = json_loads(raw, 0, &je);
    int rc = -1;
    if (!json_is_object(x)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "explicit_channel_message.TELEGRAM must be a JSON object with a method");
        goto out;
    }
    const char *m = channel_str(x, "method");
    int ok = m && strncmp(m, "send", 4) == 0 && m[4];
    for (const char *p = m ? m : ""; ok && *p; p++)
        ok = isalpha((unsigned char)*p);
    if (!ok) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "explicit_channel_message.TELEGRAM needs \"method\" naming a Bot API send method "
                "(sendMessage, sendPhoto, ...)");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(x, k, v)
    {
        if (strcmp(k, "method") && strcmp(k, "chat_id")) json_object_set(o, k, v);
    }
    /* m points into x, freed below: *method must come from this static table */
    static const char *const known[] = {
        "sendMessage",  "sendPhoto",     "sendVideo",      "sendAudio",
        "sendDocument", "sendAnimation", "sendVoice",      "sendVenue",
        "sendContact",  "sendLocation",  "sendPoll",       "sendDice",
        "sendSticker",  "sendVideoNote", "sendMediaGroup", NULL};
    *method = NULL;
    for (int i = 0; known[i]; i++)
        if (!strcmp(known[i], m)) *method = known[i];
    if (!*method) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "explicit_channel_message.TELEGRAM method %s is not a Bot API send method Parley "
                "knows",
                m);
        goto out;
    }
    rc = 0;
out:
    json_decref(x);
    return rc;
}

/* Build the Bot API parameters for m. chat_id (when not NULL) comes first. *method is a
 * static string. NULL with e on a message Telegram cannot carry. */
static json_t *tg_build(json_t *m, json_t *props, const char *chat_id, const char **method,
                        err_t *e)
{
    json_t *o = json_object(), *v;
    int rc = -1;
    if (chat_id) json_object_set_new(o, "chat_id", json_string(chat_id));
    *method = "sendMessage";
    const char *explicit_msg =
        channel_str(json_object_get(m, "explicit_channel_message"), "TELEGRAM");
    if (explicit_msg) {
        rc = build_explicit(o, explicit_msg, method, e);
    } else if ((v = json_object_get(m, "text_message"))) {
        rc = set_text(o, channel_str_or(v, "text"), props, e);
    } else if ((v = json_object_get(m, "media_message"))) {
        const char *field;
        *method = tg_media_method(channel_str_or(v, "url"), &field);
        json_object_set_new(o, field, json_string(channel_str_or(v, "url")));
        rc = 0;
    } else if ((v = json_object_get(m, "choice_message"))) {
        rc = build_choice(o, v, m, props, e);
    } else if ((v = json_object_get(m, "card_message"))) {
        rc = build_card(o, v, props, method, e);
    } else if ((v = json_object_get(m, "carousel_message"))) {
        rc = build_carousel(o, v, props, e);
    } else if ((v = json_object_get(m, "location_message"))) {
        json_t *co = json_object_get(v, "coordinates");
        *method = "sendLocation";
        json_object_set_new(o, "latitude",
                            json_real(json_number_value(json_object_get(co, "latitude"))));
        json_object_set_new(o, "longitude",
                            json_real(json_number_value(json_object_get(co, "longitude"))));
        rc = 0;
    } else if ((v = json_object_get(m, "contact_info_message"))) {
        *method = "sendContact";
        rc = build_contact(o, v, e);
    } else if ((v = json_object_get(m, "list_message"))) {
        rc = build_list(o, v, m, props, e);
    } else if (json_object_get(m, "template_message")) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "TELEGRAM cannot carry template_message (Telegram has no message templates)");
    } else {
        err_set(e, ERR_INVALID_ARGUMENT, "TELEGRAM: the message has no type Parley knows");
    }
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- outbound ---- */

static int tg_send(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = tg_token(in->credential, e);
    if (!token) return -1;
    if (!in->recipient || !*in->recipient)
        return err_set(e, ERR_INVALID_ARGUMENT, "TELEGRAM needs a chat id as recipient");
    const char *method;
    json_t *o = tg_build(in->app_message, in->channel_properties, in->recipient, &method, e);
    if (!o) return -1;
    char *body = channel_dump(o), *url = tg_url(in->base_url, token, method);
    channel_http_set(out, "POST", url, "application/json", body);
    free(body);
    free(url);
    json_decref(o);
    return 0;
}

static void tg_send_result(long status, const char *body, size_t len, channel_result_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *res = json_object_get(j, "result");
    if (status >= 200 && status < 300 && json_is_true(json_object_get(j, "ok"))) {
        out->outcome = CHANNEL_SENT;
        json_t *mid = json_object_get(res, "message_id");
        json_t *cid = json_object_get(json_object_get(res, "chat"), "id");
        if (json_is_integer(mid) && json_is_integer(cid))
            snprintf(out->provider_id, sizeof out->provider_id,
                     "%" JSON_INTEGER_FORMAT ":%" JSON_INTEGER_FORMAT, json_integer_value(cid),
                     json_integer_value(mid));
        else if (json_is_integer(mid))
            snprintf(out->provider_id, sizeof out->provider_id, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(mid));
        json_decref(j);
        return;
    }
    long code = json_is_integer(json_object_get(j, "error_code"))
                    ? (long)json_integer_value(json_object_get(j, "error_code"))
                    : status;
    const char *desc = channel_str(j, "description");
    char fallback[64];
    if (!desc) {
        snprintf(fallback, sizeof fallback,
                 status ? "Telegram answered HTTP %ld" : "no answer from Telegram", status);
        desc = fallback;
    }
    if (status == 0)
        channel_result_set(out, CHANNEL_RETRY, "CHANNEL_FAILURE", desc);
    else if (code == 429 || status == 429)
        channel_result_set(out, CHANNEL_RETRY, "RATE_LIMITED", desc);
    else if (status >= 500 || code >= 500)
        channel_result_set(out, CHANNEL_RETRY, "CHANNEL_FAILURE", desc);
    else if (code == 403)
        channel_result_set(out, CHANNEL_FAILED, "RECIPIENT_NOT_REACHABLE", desc);
    else if (code == 401 || code == 404)
        channel_result_set(out, CHANNEL_FAILED, "CHANNEL_BAD_CONFIGURATION", desc);
    else if (code == 400 && strstr(desc, "chat not found"))
        channel_result_set(out, CHANNEL_FAILED, "RECIPIENT_INVALID_CHANNEL_IDENTITY", desc);
    else if (code == 400 && (strstr(desc, "HTTP URL") || strstr(desc, "web page content") ||
                             strstr(desc, "file identifier")))
        channel_result_set(out, CHANNEL_FAILED, "MEDIA_NOT_REACHABLE", desc);
    else if (code == 400)
        channel_result_set(out, CHANNEL_FAILED, "BAD_REQUEST", desc);
    else
        channel_result_set(out, CHANNEL_FAILED, "CHANNEL_FAILURE", desc);
    json_decref(j);
}

static int tg_check(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = tg_token(in->credential, e);
    if (!token) return -1;
    char *url = tg_url(in->base_url, token, "getMe");
    channel_http_set(out, "GET", url, NULL, NULL);
    free(url);
    return 0;
}

static int tg_check_result(long status, const char *body, size_t len, char *desc, size_t cap)
{
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    int rc = -1;
    if (cap) desc[0] = '\0';
    if (status == 200 && json_is_true(json_object_get(j, "ok")) &&
        json_is_object(json_object_get(j, "result"))) {
        rc = 0;
    } else if (status == 0) {
        snprintf(desc, cap, "no answer from Telegram");
    } else {
        const char *d = channel_str(j, "description");
        snprintf(desc, cap, "Telegram getMe failed (HTTP %ld): %s", status,
                 d ? d : "unexpected answer");
    }
    json_decref(j);
    return rc;
}

int channel_telegram_set_webhook(const channel_send_t *in, const char *url, const char *secret,
                                 channel_http_t *out, err_t *e)
{
    const char *token = tg_token(in->credential, e);
    if (!token) return -1;
    if (!url || strncmp(url, "https://", 8) != 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "Telegram webhooks need an https URL");
    if (secret && *secret) {
        size_t n = strlen(secret);
        if (n > 256)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "Telegram secret_token is limited to 256 characters, got %zu", n);
        for (const char *p = secret; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                return err_set(e, ERR_INVALID_ARGUMENT,
                               "Telegram secret_token may hold only A-Z, a-z, 0-9, _ and -");
    }
    json_t *o = json_pack("{s:s}", "url", url);
    if (secret && *secret) json_object_set_new(o, "secret_token", json_string(secret));
    json_object_set_new(o, "allowed_updates", json_pack("[s,s]", "message", "callback_query"));
    char *body = channel_dump(o), *u = tg_url(in->base_url, token, "setWebhook");
    channel_http_set(out, "POST", u, "application/json", body);
    free(body);
    free(u);
    json_decref(o);
    return 0;
}

static json_t *tg_transcode(json_t *app_message, err_t *e)
{
    const char *method;
    json_t *o = tg_build(app_message, NULL, NULL, &method, e);
    if (!o) return NULL;
    json_t *r = json_pack("{s:s}", "method", method);
    json_object_update(r, o);
    json_decref(o);
    return r;
}

/* ---- inbound ---- */

static int tg_verify(const channel_inbound_t *in, json_t *credential, const char *callback_secret,
                     err_t *e)
{
    (void)credential;
    if (!callback_secret || !*callback_secret) return 0; /* nothing to check against */
    const char *h = in->header ? in->header(in->cls, "X-Telegram-Bot-Api-Secret-Token") : NULL;
    if (!h)
        return err_set(e, ERR_UNAUTHENTICATED, "missing X-Telegram-Bot-Api-Secret-Token header");
    size_t n = strlen(callback_secret);
    if (strlen(h) != n || !sec_equal(h, callback_secret, n))
        return err_set(e, ERR_UNAUTHENTICATED, "X-Telegram-Bot-Api-Secret-Token does not match");
    return 0;
}

static int bad(err_t *e, const char *what)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "malformed Telegram update: %s", what);
}

/* first_name [last_name] of a User (or a private Chat). */
static void display_name(json_t *user, char *out, size_t cap)
{
    const char *f = channel_str(user, "first_name"), *l = channel_str(user, "last_name");
    buf_t b;
    buf_init(&b);
    if (f) buf_puts(&b, f);
    if (l && *l) {
        if (b.len) buf_puts(&b, " ");
        buf_puts(&b, l);
    }
    utf8_copy(out, cap, b.data ? b.data : "");
    buf_free(&b);
}

static json_t *media_of(const char *fid, const char *caption, const char *filename)
{
    char url[320];
    snprintf(url, sizeof url, "telegram-file:%s", fid);
    if (caption && *caption)
        return json_pack("{s:{s:s,s:s}}", "media_card_message", "url", url, "caption", caption);
    json_t *mm = json_pack("{s:s}", "url", url);
    if (filename && *filename) json_object_set_new(mm, "filename_override", json_string(filename));
    return json_pack("{s:o}", "media_message", mm);
}

/* A file object's file_id, or NULL. */
static const char *file_id(json_t *f)
{
    const char *id = channel_str(f, "file_id");
    return id && *id ? id : NULL;
}

/* The ContactMessage for a Telegram Message, or NULL with e. */
static json_t *tg_content(json_t *msg, err_t *e)
{
    json_t *v;
    const char *caption = channel_str(msg, "caption");
    if ((v = json_object_get(msg, "text"))) {
        if (!json_is_string(v)) return bad(e, "message.text must be a string"), NULL;
        return json_pack("{s:{s:O}}", "text_message", "text", v);
    }
    if ((v = json_object_get(msg, "photo"))) {
        /* PhotoSize[]: the same picture in several sizes; take the largest */
        size_t i, best = 0;
        double best_area = -1;
        json_t *p;
        if (!json_is_array(v) || !json_array_size(v))
            return bad(e, "message.photo must be a non-empty array"), NULL;
        json_array_foreach(v, i, p)
        {
            if (!file_id(p)) return bad(e, "message.photo[] needs a file_id"), NULL;
            double area = (double)json_integer_value(json_object_get(p, "width")) *
                          (double)json_integer_value(json_object_get(p, "height"));
            if (area >= best_area) best_area = area, best = i;
        }
        return media_of(file_id(json_array_get(v, best)), caption, NULL);
    }
    static const char *const files[] = {"document", "video",      "animation", "audio",
                                        "voice",    "video_note", "sticker",   NULL};
    for (int i = 0; files[i]; i++) {
        if (!(v = json_object_get(msg, files[i]))) continue;
        if (!json_is_object(v) || !file_id(v)) {
            char what[64];
            snprintf(what, sizeof what, "message.%s needs a file_id", files[i]);
            return bad(e, what), NULL;
        }
        return media_of(file_id(v), caption, channel_str(v, "file_name"));
    }
    if ((v = json_object_get(msg, "venue")) || (v = json_object_get(msg, "location"))) {
        json_t *loc = json_object_get(msg, "venue") ? json_object_get(v, "location") : v;
        json_t *lat = json_object_get(loc, "latitude"), *lon = json_object_get(loc, "longitude");
        if (!json_is_number(lat) || !json_is_number(lon))
            return bad(e, "location needs numeric latitude and longitude"), NULL;
        json_t *lm = json_pack("{s:{s:O,s:O}}", "coordinates", "latitude", lat, "longitude", lon);
        if (json_object_get(msg, "venue")) {
            if (channel_str(v, "title"))
                json_object_set_new(lm, "title", json_string(channel_str(v, "title")));
            if (channel_str(v, "address"))
                json_object_set_new(lm, "label", json_string(channel_str(v, "address")));
        }
        return json_pack("{s:o}", "location_message", lm);
    }
    if ((v = json_object_get(msg, "contact"))) {
        const char *phone = channel_str(v, "phone_number");
        if (!json_is_object(v) || !phone)
            return bad(e, "message.contact needs a phone_number"), NULL;
        char name[256];
        display_name(v, name, sizeof name);
        buf_t b;
        buf_init(&b);
        if (*name) buf_printf(&b, "%s\n", name);
        buf_puts(&b, phone);
        json_t *r = json_pack("{s:{s:s}}", "text_message", "text", b.data);
        buf_free(&b);
        return r;
    }
    /* Polls, dice, games, service messages...: kept raw so nothing is silently lost. */
    char *raw = channel_dump(msg);
    json_t *r = json_pack("{s:{s:s,s:{s:s,s:s}}}", "fallback_message", "raw_message", raw, "reason",
                          "code", "UNSUPPORTED_OPERATION", "description",
                          "Telegram message kind not supported by Parley");
    free(raw);
    return r;
}

static int tg_parse_message(json_t *msg, channel_events_t *out, err_t *e)
{
    if (!json_is_object(msg)) return bad(e, "message must be an object");
    json_t *chat = json_object_get(msg, "chat"), *from = json_object_get(msg, "from");
    json_t *mid = json_object_get(msg, "message_id"), *date = json_object_get(msg, "date");
    char chat_id[64];
    if (!json_is_object(chat) ||
        channel_id_text(json_object_get(chat, "id"), chat_id, sizeof chat_id) < 0)
        return bad(e, "message.chat.id is required");
    if (!json_is_integer(mid)) return bad(e, "message.message_id must be an integer");
    if (!json_is_integer(date) || json_integer_value(date) < 0 ||
        json_integer_value(date) > 100000000000LL)
        return bad(e, "message.date must be a Unix time in seconds");
    if (from && !json_is_object(from)) return bad(e, "message.from must be an object");
    json_t *cm = tg_content(msg, e);
    if (!cm) return -1;
    channel_event_t *ev = channel_events_add(out);
    ev->kind = CHANNEL_EVENT_MESSAGE;
    ev->contact_message = cm;
    utf8_copy(ev->identity, sizeof ev->identity, chat_id);
    snprintf(ev->provider_id, sizeof ev->provider_id, "%s:%" JSON_INTEGER_FORMAT, chat_id,
             json_integer_value(mid));
    display_name(from ? from : chat, ev->display_name, sizeof ev->display_name);
    ev->time_ms = (int64_t)json_integer_value(date) * 1000;
    return 0;
}

static int tg_parse_callback(json_t *cb, channel_events_t *out, err_t *e)
{
    if (!json_is_object(cb)) return bad(e, "callback_query must be an object");
    const char *id = channel_str(cb, "id");
    json_t *from = json_object_get(cb, "from"), *msg = json_object_get(cb, "message");
    json_t *data = json_object_get(cb, "data");
    if (!id || !*id) return bad(e, "callback_query.id is required");
    if (!json_is_object(from)) return bad(e, "callback_query.from is required");
    if (msg && !json_is_object(msg)) return bad(e, "callback_query.message must be an object");
    if (data && !json_is_string(data)) return bad(e, "callback_query.data must be a string");
    if (!data || !json_string_length(data)) return 0; /* game callbacks carry no data */
    char chat_id[64], ref[160] = "";
    if (msg) {
        json_t *chat = json_object_get(msg, "chat");
        if (!json_is_object(chat) ||
            channel_id_text(json_object_get(chat, "id"), chat_id, sizeof chat_id) < 0 ||
            !json_is_integer(json_object_get(msg, "message_id")))
            return bad(e, "callback_query.message needs chat.id and message_id");
        snprintf(ref, sizeof ref, "%s:%" JSON_INTEGER_FORMAT, chat_id,
                 json_integer_value(json_object_get(msg, "message_id")));
    } else {
        /* a button under an inline-mode message: the user's private chat id is their id */
        if (channel_id_text(json_object_get(from, "id"), chat_id, sizeof chat_id) < 0)
            return bad(e, "callback_query.from.id is required");
        utf8_copy(ref, sizeof ref, channel_str_or(cb, "inline_message_id"));
    }
    channel_event_t *ev = channel_events_add(out);
    ev->kind = CHANNEL_EVENT_MESSAGE;
    ev->contact_message = json_pack("{s:{s:s,s:O}}", "choice_response_message", "message_id", ref,
                                    "postback_data", data);
    utf8_copy(ev->identity, sizeof ev->identity, chat_id);
    utf8_copy(ev->provider_id, sizeof ev->provider_id, id);
    display_name(from, ev->display_name, sizeof ev->display_name);
    ev->time_ms = 0; /* a CallbackQuery has no date */
    return 0;
}

static int tg_parse(const channel_inbound_t *in, channel_events_t *out, err_t *e)
{
    json_t *u = jsonx_parse(in->body, in->body_len, e);
    if (!u) return -1;
    int rc = 0;
    json_t *v;
    if (!json_is_object(u))
        rc = bad(e, "an Update must be an object");
    else if (!json_is_integer(json_object_get(u, "update_id")))
        rc = bad(e, "update_id must be an integer");
    else if ((v = json_object_get(u, "message")))
        rc = tg_parse_message(v, out, e);
    else if ((v = json_object_get(u, "callback_query")))
        rc = tg_parse_callback(v, out, e);
    /* edited_message, channel_post, my_chat_member, ...: nothing Parley handles */
    json_decref(u);
    return rc;
}

const channel_t channel_telegram = {
    .channel = CONVO_TELEGRAM,
    .name = "TELEGRAM",
    .credential_key = "telegram_credentials",
    .default_base_url = "https://api.telegram.org",
    .send = tg_send,
    .send_result = tg_send_result,
    .verify = tg_verify,
    .parse = tg_parse,
    .handshake = NULL,
    .check = tg_check,
    .check_result = tg_check_result,
    .transcode = tg_transcode,
};
