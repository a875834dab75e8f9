/* viber.c: the VIBERBM channel adapter (Viber REST bot API, chatapi.viber.com/pa). It owns
 * the translation between Parley's AppMessage/ContactMessage shapes and Viber's
 * send_message bodies (text, picture, url, location, contact, rich_media, keyboards), the
 * status codes of Viber's answers mapped to outcomes and Sinch reason codes, the
 * X-Viber-Content-Signature check, callback parsing (message, delivered, seen, failed) and
 * get_account_info as the credential check. Pure translation: no I/O here (channel.h);
 * docs/channels.md documents every mapping. */
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

#define VB_API_VERSION     7    /* min_api_version sent with every message */
#define VB_TEXT_MAX        7000 /* text message, characters */
#define VB_NAME_MAX        28   /* sender.name, characters */
#define VB_URL_MAX         2000 /* url message media, characters */
#define VB_TRACKING_MAX    4000 /* tracking_data, characters */
#define VB_CONTACT_NAME    28   /* contact.name, characters */
#define VB_CONTACT_PHONE   18   /* contact.phone_number, characters */
#define VB_RICH_COLS       6    /* rich media: columns of a card (group) */
#define VB_RICH_ROWS       7    /* rich media: rows of a card (group), the maximum */
#define VB_RICH_GROUPS_MAX 6    /* rich media: cards in one carousel */

/* ---- small helpers ---- */

/* The static_bearer credential: {"claimed_identity":..,"token":..} (or nested). */
static json_t *vb_cred(json_t *cred)
{
    json_t *inner = json_object_get(cred, "static_bearer");
    return json_is_object(inner) ? inner : cred;
}

static const char *vb_token(json_t *cred, err_t *e)
{
    const char *t = channel_str(vb_cred(cred), "token");
    if (!t || !*t)
        return err_set(e, ERR_FAILED_PRECONDITION, "VIBERBM credential needs the auth token"), NULL;
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return err_set(e, ERR_FAILED_PRECONDITION,
                           "VIBERBM auth token has a character a token cannot have"),
                   NULL;
    return t;
}

static int is_image(const char *url)
{
    size_t end = strcspn(url, "?#"), dot = end;
    for (size_t i = 0; i < end; i++) {
        if (url[i] == '/') dot = end;
        if (url[i] == '.') dot = i;
    }
    if (dot == end) return 0;
    char ext[6];
    size_t n = end - dot - 1;
    if (n >= sizeof ext) return 0;
    for (size_t i = 0; i < n; i++)
        ext[i] = (char)tolower((unsigned char)url[dot + 1 + i]);
    ext[n] = '\0';
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png") ||
           !strcmp(ext, "gif");
}

/* Text for a Button's Text field, which Viber renders as limited HTML. */
static void html(buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            buf_puts(b, "&amp;");
        else if (*s == '<')
            buf_puts(b, "&lt;");
        else if (*s == '>')
            buf_puts(b, "&gt;");
        else if (*s == '\n')
            buf_puts(b, "<br>");
        else
            buf_append(b, s, 1);
    }
}

static json_t *html_str(const char *s)
{
    buf_t b;
    buf_init(&b);
    html(&b, s);
    json_t *r = json_string(b.data ? b.data : "");
    buf_free(&b);
    return r;
}

/* {base}/<path>; trailing slashes of the base are dropped. */
static char *vb_url(const char *base, const char *path)
{
    buf_t b;
    buf_init(&b);
    if (!base || !*base) base = "https://chatapi.viber.com/pa";
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    buf_append(&b, base, n);
    buf_printf(&b, "/%s", path);
    return buf_steal(&b);
}

/* ---- buttons (keyboards and rich media share the Button shape) ---- */

/* One Choice as a Button. Reply buttons send ActionBody back as the user's text; the
 * postbacks array collects those bodies (see tracking_data). */
static int vb_button(json_t *c, json_t *buttons, json_t *postbacks, err_t *e)
{
    json_t *v, *b = json_pack("{s:i,s:i}", "Columns", VB_RICH_COLS, "Rows", 1);
    char url[128];
    const char *title, *type = "open-url", *body;
    if ((v = json_object_get(c, "text_message"))) {
        title = channel_str_or(v, "text");
        const char *pb = channel_str(c, "postback_data");
        body = pb && *pb ? pb : title;
        type = "reply";
        json_array_append_new(postbacks, json_string(body));
    } else if ((v = json_object_get(c, "url_message"))) {
        title = channel_str_or(v, "title");
        body = channel_str_or(v, "url");
    } else if ((v = json_object_get(c, "call_message"))) {
        title = channel_str_or(v, "title");
        snprintf(url, sizeof url, "tel:%s", channel_str_or(v, "phone_number"));
        body = url;
    } else if ((v = json_object_get(c, "location_message"))) {
        json_t *co = json_object_get(v, "coordinates");
        title = channel_str_or(v, "title");
        snprintf(url, sizeof url, "https://maps.google.com/?q=%.15g,%.15g",
                 json_number_value(json_object_get(co, "latitude")),
                 json_number_value(json_object_get(co, "longitude")));
        body = url;
    } else if ((v = json_object_get(c, "calendar_message")) ||
               (v = json_object_get(c, "share_location_message"))) {
        title = channel_str_or(v, "title");
        body = channel_str_or(v, "fallback_url");
    } else {
        json_decref(b);
        return err_set(e, ERR_INVALID_ARGUMENT, "VIBERBM cannot carry this choice type");
    }
    json_object_set_new(b, "ActionType", json_string(type));
    json_object_set_new(b, "ActionBody", json_string(body));
    json_object_set_new(b, "Text", html_str(title));
    json_array_append_new(buttons, b);
    return 0;
}

static int vb_buttons(json_t *choices, json_t *buttons, json_t *postbacks, err_t *e)
{
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) if (vb_button(c, buttons, postbacks, e) < 0) return -1;
    return 0;
}

static void vb_keyboard(json_t *o, json_t *buttons)
{
    if (json_array_size(buttons))
        json_object_set_new(
            o, "keyboard",
            json_pack("{s:s,s:b,s:O}", "Type", "keyboard", "DefaultHeight", 0, "Buttons", buttons));
}

static int set_text(json_t *o, const char *text, err_t *e)
{
    size_t n = utf8_len(text);
    if (n == 0) return err_set(e, ERR_INVALID_ARGUMENT, "VIBERBM cannot send an empty text");
    if (n > VB_TEXT_MAX)
        return channel_too_long(e, "VIBERBM", "message text", n, VB_TEXT_MAX, "characters");
    json_object_set_new(o, "type", json_string("text"));
    json_object_set_new(o, "text", json_string(text));
    return 0;
}

/* One card as a rich media group of 6x7: media image on top, then title and description,
 * then one row per choice. The rows the choices leave go to image and text. */
static int vb_card(json_t *card, size_t idx, json_t *buttons, json_t *postbacks, err_t *e)
{
    json_t *media = json_object_get(card, "media_message"),
           *choices = json_object_get(card, "choices");
    const char *url = channel_str(media, "url"), *thumb = channel_str(media, "thumbnail_url");
    const char *title = channel_str_or(card, "title"), *desc = channel_str_or(card, "description");
    const char *image = url && is_image(url) ? url : thumb;
    buf_t t;
    buf_init(&t);
    if (*title) {
        buf_puts(&t, "<b>");
        html(&t, title);
        buf_puts(&t, "</b>");
    }
    if (*desc) {
        if (t.len) buf_puts(&t, "<br>");
        html(&t, desc);
    }
    if (url && !is_image(url)) { /* a video or document: its link in the text */
        if (t.len) buf_puts(&t, "<br>");
        html(&t, url);
    }
    size_t n = json_array_size(choices), need = (image ? 1 : 0) + (t.len ? 1 : 0);
    if (n + need > VB_RICH_ROWS) {
        buf_free(&t);
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "VIBERBM rich media cards have %d rows: card %zu needs %zu for its media "
                       "and text and %zu for its choices",
                       VB_RICH_ROWS, idx, need, n);
    }
    int avail = VB_RICH_ROWS - (int)n, text_rows = 0, image_rows = 0;
    if (image && t.len)
        text_rows = avail >= 5 ? 2 : 1, image_rows = avail - text_rows;
    else if (image)
        image_rows = avail;
    else
        text_rows = avail;
    if (image)
        json_array_append_new(buttons, json_pack("{s:i,s:i,s:s,s:s,s:s}", "Columns", VB_RICH_COLS,
                                                 "Rows", image_rows, "ActionType", "open-url",
                                                 "ActionBody", url ? url : image, "Image", image));
    if (t.len)
        json_array_append_new(buttons, json_pack("{s:i,s:i,s:s,s:s,s:s,s:s,s:s}", "Columns",
                                                 VB_RICH_COLS, "Rows", text_rows, "ActionType",
                                                 "none", "ActionBody", "none", "Text", t.data,
                                                 "TextVAlign", "top", "TextHAlign", "left"));
    buf_free(&t);
    return vb_buttons(choices, buttons, postbacks, e);
}

static json_t *vb_rich(json_t *buttons)
{
    return json_pack("{s:s,s:i,s:i,s:s,s:O}", "Type", "rich_media", "ButtonsGroupColumns",
                     VB_RICH_COLS, "ButtonsGroupRows", VB_RICH_ROWS, "BgColor", "#FFFFFF",
                     "Buttons", buttons);
}

/* ---- message builders ---- */

static int build_text_with(json_t *o, const char *text, json_t *choices, json_t *postbacks,
                           err_t *e)
{
    json_t *buttons = json_array();
    int rc = -1;
    if (vb_buttons(choices, buttons, postbacks, e) < 0 || set_text(o, text, e) < 0) goto out;
    vb_keyboard(o, buttons);
    rc = 0;
out:
    json_decref(buttons);
    return rc;
}

static int build_choice(json_t *o, json_t *v, json_t *m, json_t *postbacks, err_t *e)
{
    const char *t = channel_str(json_object_get(v, "text_message"), "text");
    char *rendered = NULL;
    if (!t || !*t) {
        /* a keyboard needs a message to come with: the plain-text form */
        if (!(rendered = channel_render_text(m, e))) return -1;
        t = rendered;
    }
    int rc = build_text_with(o, t, json_object_get(v, "choices"), postbacks, e);
    free(rendered);
    return rc;
}

static int build_cards(json_t *o, json_t *cards, json_t *choices, json_t *postbacks, err_t *e)
{
    size_t n = json_array_size(cards), i;
    json_t *card, *buttons = json_array(), *kb = json_array();
    int rc = -1;
    if (n > VB_RICH_GROUPS_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT, "VIBERBM rich media holds at most %d cards, got %zu",
                VB_RICH_GROUPS_MAX, n);
        goto out;
    }
    json_array_foreach(cards, i, card) if (vb_card(card, i, buttons, postbacks, e) < 0) goto out;
    if (vb_buttons(choices, kb, postbacks, e) < 0) goto out;
    json_object_set_new(o, "type", json_string("rich_media"));
    json_object_set_new(o, "rich_media", vb_rich(buttons));
    vb_keyboard(o, kb);
    rc = 0;
out:
    json_decref(buttons);
    json_decref(kb);
    return rc;
}

static int build_list(json_t *o, json_t *v, json_t *m, json_t *postbacks, err_t *e)
{
    size_t i, k;
    json_t *sec, *it, *choices = json_array();
    int products = 0, rc = -1;
    json_array_foreach(json_object_get(v, "sections"), i, sec)
    {
        json_array_foreach(json_object_get(sec, "items"), k, it)
        {
            json_t *ch = json_object_get(it, "choice");
            if (!json_is_object(ch)) {
                products = 1;
                continue;
            }
            json_t *c = json_pack("{s:{s:s}}", "text_message", "text", channel_str_or(ch, "title"));
            if (channel_str(ch, "postback_data"))
                json_object_set_new(c, "postback_data",
                                    json_string(channel_str(ch, "postback_data")));
            json_array_append_new(choices, c);
        }
    }
    buf_t b;
    buf_init(&b);
    if (products) {
        /* products have no keyboard form: the whole list as plain text */
        char *text = channel_render_text(m, e);
        if (text) rc = set_text(o, text, e);
        free(text);
    } else {
        buf_puts(&b, channel_str_or(v, "title"));
        if (*channel_str_or(v, "description"))
            buf_printf(&b, "\n%s", channel_str_or(v, "description"));
        rc = build_text_with(o, b.data, choices, postbacks, e);
    }
    buf_free(&b);
    json_decref(choices);
    return rc;
}

static int build_contact(json_t *o, json_t *v, err_t *e)
{
    const char *name = channel_str_or(json_object_get(v, "name"), "full_name");
    const char *phone =
        channel_str_or(json_array_get(json_object_get(v, "phone_numbers"), 0), "phone_number");
    if (utf8_len(name) > VB_CONTACT_NAME)
        return channel_too_long(e, "VIBERBM", "contact name", utf8_len(name), VB_CONTACT_NAME,
                                "characters");
    if (utf8_len(phone) > VB_CONTACT_PHONE)
        return channel_too_long(e, "VIBERBM", "contact phone_number", utf8_len(phone),
                                VB_CONTACT_PHONE, "characters");
    json_object_set_new(o, "type", json_string("contact"));
    json_object_set_new(o, "contact", json_pack("{s:s,s:s}", "name", name, "phone_number", phone));
    return 0;
}

/* The message fields (type and its payload, keyboard) for m, without receiver, sender and
 * tracking_data. Reply-button bodies are appended to postbacks. */
static json_t *vb_build(json_t *m, json_t *postbacks, err_t *e)
{
    json_t *o = json_object(), *v;
    int rc = -1;
    if ((v = json_object_get(m, "text_message"))) {
        rc = set_text(o, channel_str_or(v, "text"), e);
    } else if ((v = json_object_get(m, "media_message"))) {
        const char *url = channel_str_or(v, "url"), *thumb = channel_str(v, "thumbnail_url");
        if (is_image(url)) {
            json_object_set_new(o, "type", json_string("picture"));
            json_object_set_new(o, "text", json_string(""));
            json_object_set_new(o, "media", json_string(url));
            if (thumb) json_object_set_new(o, "thumbnail", json_string(thumb));
            rc = 0;
        } else if (utf8_len(url) > VB_URL_MAX) {
            rc = channel_too_long(e, "VIBERBM", "media url", utf8_len(url), VB_URL_MAX,
                                  "characters");
        } else {
            /* video and file messages need the byte size, which Parley cannot know without
             * fetching the media: they go as url messages (Viber previews the link) */
            json_object_set_new(o, "type", json_string("url"));
            json_object_set_new(o, "media", json_string(url));
            rc = 0;
        }
    } else if ((v = json_object_get(m, "choice_message"))) {
        rc = build_choice(o, v, m, postbacks, e);
    } else if ((v = json_object_get(m, "card_message"))) {
        json_t *cards = json_pack("[O]", v);
        rc = build_cards(o, cards, NULL, postbacks, e);
        json_decref(cards);
    } else if ((v = json_object_get(m, "carousel_message"))) {
        rc = build_cards(o, json_object_get(v, "cards"), json_object_get(v, "choices"), postbacks,
                         e);
    } else if ((v = json_object_get(m, "location_message"))) {
        json_t *co = json_object_get(v, "coordinates");
        json_object_set_new(o, "type", json_string("location"));
        json_object_set_new(o, "location",
                            json_pack("{s:f,s:f}", "lat",
                                      json_number_value(json_object_get(co, "latitude")), "lon",
                                      json_number_value(json_object_get(co, "longitude"))));
        rc = 0;
    } else if ((v = json_object_get(m, "contact_info_message"))) {
        rc = build_contact(o, v, e);
    } else if ((v = json_object_get(m, "list_message"))) {
        rc = build_list(o, v, m, postbacks, e);
    } else if (json_object_get(m, "template_message")) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "VIBERBM cannot carry template_message (Viber bots have no message templates)");
    } else {
        err_set(e, ERR_INVALID_ARGUMENT, "VIBERBM: the message has no type Parley knows");
    }
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* explicit_channel_message.VIBERBM (or .VIBER): a JSON object string, the send_message
 * body minus receiver (what messages:transcode returns). */
static json_t *vb_explicit(json_t *m, err_t *e)
{
    json_t *x = json_object_get(m, "explicit_channel_message");
    const char *raw = channel_str(x, "VIBERBM");
    if (!raw) raw = channel_str(x, "VIBER");
    if (!raw) return NULL;
    json_t *o = json_loads(raw, 0, NULL);
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "type"))) {
        json_decref(o);
        err_set(e, ERR_INVALID_ARGUMENT,
                "explicit_channel_message.VIBERBM must be a JSON object with a type");
        return json_null(); /* marks the error */
    }
    return o;
}

/* ---- outbound ---- */

static int vb_send(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = vb_token(in->credential, e);
    if (!token) return -1;
    if (!in->recipient || !*in->recipient)
        return err_set(e, ERR_INVALID_ARGUMENT, "VIBERBM needs a Viber user id as recipient");
    json_t *props = in->channel_properties;
    const char *name = channel_str(props, "VIBER_SENDER_NAME");
    if (!name || !*name) name = channel_str(vb_cred(in->credential), "claimed_identity");
    if (!name || !*name)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "VIBERBM needs a sender name: the credential's claimed_identity or the "
                       "VIBER_SENDER_NAME channel property");
    if (utf8_len(name) > VB_NAME_MAX)
        return channel_too_long(e, "VIBERBM", "sender name", utf8_len(name), VB_NAME_MAX,
                                "characters");
    const char *avatar = channel_str(props, "VIBER_SENDER_AVATAR");

    json_t *postbacks = json_array();
    json_t *msg = vb_explicit(in->app_message, e);
    if (json_is_null(msg)) {
        json_decref(postbacks);
        return -1;
    }
    if (!msg && !(msg = vb_build(in->app_message, postbacks, e))) {
        json_decref(postbacks);
        return -1;
    }
    json_t *body = json_pack("{s:s}", "receiver", in->recipient);
    json_t *ver = json_object_get(msg, "min_api_version");
    if (ver)
        json_object_set(body, "min_api_version", ver);
    else
        json_object_set_new(body, "min_api_version", json_integer(VB_API_VERSION));
    json_t *sender = json_object_get(msg, "sender");
    if (sender) {
        json_object_set(body, "sender", sender);
    } else {
        sender = json_pack("{s:s}", "name", name);
        if (avatar && *avatar) json_object_set_new(sender, "avatar", json_string(avatar));
        json_object_set_new(body, "sender", sender);
    }
    /* Reply buttons come back as plain text messages; tracking_data (returned with the
     * user's reply) names the message and its postbacks so parse can tell a tap from typing. */
    if (in->message_id && json_array_size(postbacks)) {
        json_t *t = json_pack("{s:s,s:O}", "message_id", in->message_id, "postbacks", postbacks);
        char *s = channel_dump(t);
        if (utf8_len(s) <= VB_TRACKING_MAX)
            json_object_set_new(body, "tracking_data", json_string(s));
        free(s);
        json_decref(t);
    }
    const char *k;
    json_t *v;
    json_object_foreach(msg, k, v)
    {
        if (strcmp(k, "receiver") && strcmp(k, "min_api_version") && strcmp(k, "sender"))
            json_object_set(body, k, v);
    }
    char *s = channel_dump(body), *url = vb_url(in->base_url, "send_message");
    channel_http_set(out, "POST", url, "application/json", s);
    channel_http_header(out, "X-Viber-Auth-Token: %s", token);
    free(s);
    free(url);
    json_decref(body);
    json_decref(msg);
    json_decref(postbacks);
    return 0;
}

/* Viber's status codes (send_message "status") -> reason code; RETRY only for 12. */
static const char *vb_reason(long st)
{
    switch (st) {
    case 2:  /* invalidAuthToken */
    case 7:  /* publicAccountBlocked */
    case 8:  /* publicAccountNotFound */
    case 9:  /* publicAccountSuspended */
    case 10: /* webhookNotSet */
    case 15: /* publicAccountNotAuthorized */
    case 17: /* publicAccountIsNotInline */
    case 18: /* noPublicChat */
    case 22: /* paymentUnsupported */
    case 24: /* noBalance */
        return "CHANNEL_BAD_CONFIGURATION";
    case 5:  /* receiverNotRegistered */
    case 6:  /* receiverNotSubscribed */
    case 11: /* receiverNoSuitableDevice */
        return "RECIPIENT_NOT_REACHABLE";
    case 1:  /* invalidUrl */
    case 3:  /* badData */
    case 4:  /* missingData */
    case 13: /* apiVersionNotSupported */
    case 16: /* inchatReplyMessageNotAllowed */
    case 19: /* cannotSendBroadcast */
        return "BAD_REQUEST";
    case 12: /* tooManyRequests */
        return "RATE_LIMITED";
    case 14: /* incompatibleWithVersion: the receiver's client cannot show this type */
        return "UNSUPPORTED_OPERATION";
    case 20: /* broadcastNotAllowed */
        return "NO_PERMISSION";
    case 21: /* unsupportedCountry */
        return "DELIVERY_REJECTED_DUE_TO_POLICY";
    case 23: /* freeMessagesExceeded: out-of-session quota used up */
        return "OUTSIDE_ALLOWED_SENDING_WINDOW";
    default:
        return "CHANNEL_FAILURE";
    }
}

static void vb_send_result(long status, const char *body, size_t len, channel_result_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *st = json_object_get(j, "status");
    char desc[200];
    if (status == 0 || status >= 500 || status == 429) {
        snprintf(desc, sizeof desc, status ? "Viber answered HTTP %ld" : "no answer from Viber",
                 status);
        channel_result_set(out, CHANNEL_RETRY, status == 429 ? "RATE_LIMITED" : "CHANNEL_FAILURE",
                           desc);
    } else if (status < 200 || status >= 300 || !json_is_integer(st)) {
        snprintf(desc, sizeof desc, "Viber answered HTTP %ld without a status", status);
        channel_result_set(out, CHANNEL_FAILED, "CHANNEL_FAILURE", desc);
    } else if (json_integer_value(st) == 0) {
        out->outcome = CHANNEL_SENT;
        json_t *tok = json_object_get(j, "message_token");
        if (json_is_integer(tok))
            snprintf(out->provider_id, sizeof out->provider_id, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(tok));
        else if (json_is_string(tok))
            utf8_copy(out->provider_id, sizeof out->provider_id, json_string_value(tok));
    } else {
        long s = (long)json_integer_value(st);
        snprintf(desc, sizeof desc, "Viber status %ld: %s", s, channel_str_or(j, "status_message"));
        channel_result_set(out, s == 12 ? CHANNEL_RETRY : CHANNEL_FAILED, vb_reason(s), desc);
    }
    json_decref(j);
}

static int vb_check(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = vb_token(in->credential, e);
    if (!token) return -1;
    char *url = vb_url(in->base_url, "get_account_info");
    channel_http_set(out, "POST", url, "application/json", "{}");
    channel_http_header(out, "X-Viber-Auth-Token: %s", token);
    free(url);
    return 0;
}

static int vb_check_result(long status, const char *body, size_t len, char *desc, size_t cap)
{
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *st = json_object_get(j, "status");
    int rc = -1;
    if (cap) desc[0] = '\0';
    if (status == 200 && json_is_integer(st) && json_integer_value(st) == 0)
        rc = 0;
    else if (status == 0)
        snprintf(desc, cap, "no answer from Viber");
    else if (json_is_integer(st))
        snprintf(desc, cap, "Viber get_account_info failed: status %" JSON_INTEGER_FORMAT " %s",
                 json_integer_value(st), channel_str_or(j, "status_message"));
    else
        snprintf(desc, cap, "Viber get_account_info failed: HTTP %ld", status);
    json_decref(j);
    return rc;
}

static json_t *vb_transcode(json_t *app_message, err_t *e)
{
    json_t *postbacks = json_array();
    json_t *msg = vb_explicit(app_message, e);
    if (json_is_null(msg))
        msg = NULL;
    else if (!msg)
        msg = vb_build(app_message, postbacks, e);
    json_decref(postbacks);
    if (!msg) return NULL;
    json_t *r = json_pack("{s:i}", "min_api_version", VB_API_VERSION);
    json_object_update(r, msg);
    json_decref(msg);
    return r;
}

/* ---- inbound ---- */

static int vb_verify(const channel_inbound_t *in, json_t *credential, const char *callback_secret,
                     err_t *e)
{
    (void)callback_secret; /* Viber signs with the auth token itself */
    const char *token = channel_str(vb_cred(credential), "token");
    if (!token || !*token)
        return err_set(e, ERR_UNAUTHENTICATED, "no Viber auth token to verify the signature with");
    const char *h = in->header ? in->header(in->cls, "X-Viber-Content-Signature") : NULL;
    if (!h) return err_set(e, ERR_UNAUTHENTICATED, "missing X-Viber-Content-Signature header");
    uint8_t mac[SEC_HMAC_LEN];
    sec_hmac_sha256(token, strlen(token), in->body ? in->body : "", in->body_len, mac);
    char want[2 * SEC_HMAC_LEN + 1], got[2 * SEC_HMAC_LEN + 1];
    for (int i = 0; i < SEC_HMAC_LEN; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    size_t n = strlen(h);
    if (n != 2 * SEC_HMAC_LEN)
        return err_set(e, ERR_UNAUTHENTICATED, "X-Viber-Content-Signature does not match");
    for (size_t i = 0; i <= n; i++)
        got[i] = (char)tolower((unsigned char)h[i]);
    if (!sec_equal(got, want, 2 * SEC_HMAC_LEN))
        return err_set(e, ERR_UNAUTHENTICATED, "X-Viber-Content-Signature does not match");
    return 0;
}

static int bad(err_t *e, const char *what)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "malformed Viber callback: %s", what);
}

/* A reply-button tap: the text is one of the postbacks our tracking_data listed. */
static json_t *vb_choice(const char *text, const char *tracking)
{
    if (!tracking) return NULL;
    json_t *t = json_loads(tracking, 0, NULL), *p;
    const char *mid = channel_str(t, "message_id");
    json_t *r = NULL;
    size_t i;
    if (mid && *mid) json_array_foreach(json_object_get(t, "postbacks"), i, p)
        {
            if (json_is_string(p) && !strcmp(json_string_value(p), text)) {
                r = json_pack("{s:{s:s,s:s}}", "choice_response_message", "message_id", mid,
                              "postback_data", text);
                break;
            }
        }
    json_decref(t);
    return r;
}

static json_t *vb_content(json_t *msg, err_t *e)
{
    const char *type = channel_str(msg, "type"), *media = channel_str(msg, "media");
    const char *text = channel_str(msg, "text");
    if (!type) return bad(e, "message.type is required"), NULL;
    if (!strcmp(type, "text")) {
        if (!text) return bad(e, "a text message needs text"), NULL;
        json_t *c = vb_choice(text, channel_str(msg, "tracking_data"));
        return c ? c : json_pack("{s:{s:s}}", "text_message", "text", text);
    }
    if (!strcmp(type, "picture") || !strcmp(type, "video") || !strcmp(type, "file") ||
        (!strcmp(type, "sticker") && media)) {
        if (!media || !*media) return bad(e, "a media message needs media"), NULL;
        if (text && *text && !strcmp(type, "picture"))
            return json_pack("{s:{s:s,s:s}}", "media_card_message", "url", media, "caption", text);
        json_t *mm = json_pack("{s:s}", "url", media);
        if (channel_str(msg, "thumbnail"))
            json_object_set_new(mm, "thumbnail_url", json_string(channel_str(msg, "thumbnail")));
        if (channel_str(msg, "file_name"))
            json_object_set_new(mm, "filename_override",
                                json_string(channel_str(msg, "file_name")));
        return json_pack("{s:o}", "media_message", mm);
    }
    if (!strcmp(type, "location")) {
        json_t *loc = json_object_get(msg, "location");
        json_t *lat = json_object_get(loc, "lat"), *lon = json_object_get(loc, "lon");
        if (!json_is_number(lat) || !json_is_number(lon))
            return bad(e, "location needs numeric lat and lon"), NULL;
        json_t *lm = json_pack("{s:{s:O,s:O}}", "coordinates", "latitude", lat, "longitude", lon);
        if (channel_str(loc, "address") && *channel_str(loc, "address"))
            json_object_set_new(lm, "label", json_string(channel_str(loc, "address")));
        return json_pack("{s:o}", "location_message", lm);
    }
    if (!strcmp(type, "contact")) {
        json_t *c = json_object_get(msg, "contact");
        const char *phone = channel_str(c, "phone_number"), *name = channel_str(c, "name");
        if (!phone) return bad(e, "contact needs a phone_number"), NULL;
        buf_t b;
        buf_init(&b);
        if (name && *name) buf_printf(&b, "%s\n", name);
        buf_puts(&b, phone);
        json_t *r = json_pack("{s:{s:s}}", "text_message", "text", b.data);
        buf_free(&b);
        return r;
    }
    if (!strcmp(type, "url")) {
        if (!media) return bad(e, "a url message needs media"), NULL;
        return json_pack("{s:{s:s}}", "text_message", "text", media);
    }
    char *raw = channel_dump(msg);
    json_t *r = json_pack("{s:{s:s,s:{s:s,s:s}}}", "fallback_message", "raw_message", raw, "reason",
                          "code", "UNSUPPORTED_OPERATION", "description",
                          "Viber message type not supported by Parley");
    free(raw);
    return r;
}

static int vb_parse(const channel_inbound_t *in, channel_events_t *out, err_t *e)
{
    json_t *j = jsonx_parse(in->body, in->body_len, e);
    if (!j) return -1;
    int rc = 0;
    const char *event = channel_str(j, "event");
    json_t *ts = json_object_get(j, "timestamp");
    char token[160];
    if (!json_is_object(j) || !event) {
        rc = bad(e, "event is required");
    } else if (ts && !json_is_integer(ts)) {
        rc = bad(e, "timestamp must be an integer");
    } else if (!strcmp(event, "message")) {
        json_t *sender = json_object_get(j, "sender"), *msg = json_object_get(j, "message");
        const char *id = channel_str(sender, "id");
        json_t *cm;
        if (!id || !*id)
            rc = bad(e, "sender.id is required");
        else if (!json_is_object(msg))
            rc = bad(e, "message must be an object");
        else if (channel_id_text(json_object_get(j, "message_token"), token, sizeof token) < 0)
            rc = bad(e, "message_token is required");
        else if (!(cm = vb_content(msg, e)))
            rc = -1;
        else {
            channel_event_t *ev = channel_events_add(out);
            ev->kind = CHANNEL_EVENT_MESSAGE;
            ev->contact_message = cm;
            utf8_copy(ev->identity, sizeof ev->identity, id);
            utf8_copy(ev->provider_id, sizeof ev->provider_id, token);
            utf8_copy(ev->display_name, sizeof ev->display_name, channel_str_or(sender, "name"));
            ev->time_ms = json_integer_value(ts);
        }
    } else if (!strcmp(event, "delivered") || !strcmp(event, "seen") || !strcmp(event, "failed")) {
        const char *user = channel_str(j, "user_id");
        if (!user || !*user)
            rc = bad(e, "user_id is required");
        else if (channel_id_text(json_object_get(j, "message_token"), token, sizeof token) < 0)
            rc = bad(e, "message_token is required");
        else {
            channel_event_t *ev = channel_events_add(out);
            ev->kind = CHANNEL_EVENT_RECEIPT;
            utf8_copy(ev->identity, sizeof ev->identity, user);
            utf8_copy(ev->provider_id, sizeof ev->provider_id, token);
            snprintf(ev->status, sizeof ev->status, "%s",
                     event[0] == 'd'   ? "DELIVERED"
                     : event[0] == 's' ? "READ"
                                       : "FAILED");
            if (event[0] == 'f')
                snprintf(ev->reason_code, sizeof ev->reason_code, "RECIPIENT_NOT_REACHABLE");
            ev->time_ms = json_integer_value(ts);
        }
    }
    /* subscribed, unsubscribed, conversation_started, webhook, client_status: 0 events */
    json_decref(j);
    return rc;
}

const channel_t channel_viber = {
    .channel = CONVO_VIBERBM,
    .name = "VIBERBM",
    .credential_key = "static_bearer",
    .default_base_url = "https://chatapi.viber.com/pa",
    .send = vb_send,
    .send_result = vb_send_result,
    .verify = vb_verify,
    .parse = vb_parse,
    .handshake = NULL,
    .check = vb_check,
    .check_result = vb_check_result,
    .transcode = vb_transcode,
};
