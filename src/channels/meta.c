/* meta.c: the pieces the WhatsApp, Messenger and Instagram adapters share because Meta
 * runs all three on the Graph API (see meta.h): webhook signatures, the hub.challenge
 * handshake, Graph error mapping, string helpers, and the Messenger Platform message
 * and webhook shapes that Messenger and Instagram both use. Kept in one place so the
 * three adapters verify, fail and fall back identically (docs/channels.md). */
#include "channels/meta.h"
#include "base/utf8.h"
#include "base/buf.h"
#include "base/jsonx.h"
#include "base/sec.h"
#include "channels/render.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ================= small helpers ================= */

size_t channel_meta_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

const char *channel_meta_cred(json_t *credential, const char *key, const char *field)
{
    if (!json_is_object(credential)) return NULL;
    json_t *inner = key ? json_object_get(credential, key) : NULL;
    json_t *obj = json_is_object(inner) ? inner : credential;
    const char *s = json_string_value(json_object_get(obj, field));
    if (!s || !*s) return NULL;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return NULL;
    return s;
}

char *channel_meta_base(const char *base_url)
{
    const char *b = (base_url && *base_url) ? base_url : CHANNEL_META_BASE_URL;
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == '/')
        n--;
    char *out = xmalloc(n + 1);
    memcpy(out, b, n);
    out[n] = '\0';
    return out;
}

char *channel_meta_pct(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_append(&b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(&b, esc, 3);
        }
    }
    return buf_steal(&b);
}

char *channel_meta_dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!s) abort(); /* only on allocation failure: the values come from valid JSON */
    return s;
}

/* The extension (lower-cased, without the dot) of the last path segment of a URL or file
 * name, into ext (cap bytes); "" when there is none. */
static void extension(const char *s, char *ext, size_t cap)
{
    ext[0] = '\0';
    if (!s || !*s) return;
    const char *start = s, *scheme = strstr(s, "://");
    if (scheme) {
        start = strchr(scheme + 3, '/');
        if (!start) return;
    }
    size_t end = strcspn(start, "?#");
    const char *seg = start, *dot = NULL;
    for (size_t i = 0; i < end; i++) {
        if (start[i] == '/')
            seg = start + i + 1, dot = NULL;
        else if (start[i] == '.')
            dot = start + i;
    }
    if (!dot || dot < seg) return;
    size_t n = (size_t)(start + end - dot - 1);
    if (n == 0 || n >= cap) return;
    for (size_t i = 0; i < n; i++) {
        char c = dot[1 + i];
        ext[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    ext[n] = '\0';
}

static int in_list(const char *ext, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(ext, *list) == 0) return 1;
    return 0;
}

const char *channel_meta_media_kind(const char *url, const char *filename)
{
    static const char *const images[] = {"jpg", "jpeg", "png", "webp", NULL};
    static const char *const videos[] = {"mp4", "3gp", "3gpp", NULL};
    static const char *const audios[] = {"aac", "amr", "mp3", "m4a", "ogg", "oga", "opus", NULL};
    char ext[16];
    extension(url, ext, sizeof ext);
    if (!ext[0]) extension(filename, ext, sizeof ext);
    if (in_list(ext, images)) return "image";
    if (in_list(ext, videos)) return "video";
    if (in_list(ext, audios)) return "audio";
    return "document";
}

/* ================= signature and handshake ================= */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int channel_meta_verify(const channel_inbound_t *in, const char *callback_secret, err_t *e)
{
    if (!callback_secret || !*callback_secret)
        return err_set(e, ERR_PERMISSION_DENIED,
                       "no app secret (callback_secret) is configured for this channel, so its "
                       "webhooks cannot be verified");
    const char *h = in->header ? in->header(in->cls, "X-Hub-Signature-256") : NULL;
    if (!h || !*h) return err_set(e, ERR_UNAUTHENTICATED, "missing X-Hub-Signature-256 header");
    if (strncasecmp(h, "sha256=", 7) != 0 || strlen(h + 7) != 2 * SEC_HMAC_LEN)
        return err_set(e, ERR_UNAUTHENTICATED,
                       "malformed X-Hub-Signature-256 header: expected sha256=<64 hex digits>");
    uint8_t got[SEC_HMAC_LEN], want[SEC_HMAC_LEN];
    for (size_t i = 0; i < SEC_HMAC_LEN; i++) {
        int hi = hexval(h[7 + 2 * i]), lo = hexval(h[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return err_set(e, ERR_UNAUTHENTICATED,
                           "malformed X-Hub-Signature-256 header: expected sha256=<64 hex digits>");
        got[i] = (uint8_t)(hi << 4 | lo);
    }
    sec_hmac_sha256(callback_secret, strlen(callback_secret), in->body ? in->body : "",
                    in->body ? in->body_len : 0, want);
    if (!sec_equal(got, want, SEC_HMAC_LEN))
        return err_set(e, ERR_UNAUTHENTICATED,
                       "X-Hub-Signature-256 does not match the body and the app secret");
    return 0;
}

static const char *query(const channel_inbound_t *in, const char *name)
{
    return in->query ? in->query(in->cls, name) : NULL;
}

int channel_meta_handshake(const channel_inbound_t *in, const char *callback_secret,
                           channel_reply_t *reply, err_t *e)
{
    reply->status = 403;
    reply->body[0] = '\0';
    const char *mode = query(in, "hub.mode"), *token = query(in, "hub.verify_token"),
               *challenge = query(in, "hub.challenge");
    if (!mode || strcmp(mode, "subscribe") != 0)
        return err_set(e, ERR_PERMISSION_DENIED, "hub.mode must be subscribe");
    if (!callback_secret || !*callback_secret)
        return err_set(e, ERR_PERMISSION_DENIED,
                       "no verify token (callback_secret) is configured for this channel");
    /* Compare digests so that neither the content nor the length of the secret leaks. */
    uint8_t a[SEC_HASH_LEN], b[SEC_HASH_LEN];
    sec_hash(NULL, token ? token : "", token ? strlen(token) : 0, a);
    sec_hash(NULL, callback_secret, strlen(callback_secret), b);
    if (!token || !sec_equal(a, b, SEC_HASH_LEN))
        return err_set(e, ERR_PERMISSION_DENIED, "hub.verify_token does not match");
    if (!challenge || !*challenge) {
        reply->status = 400;
        return err_set(e, ERR_INVALID_ARGUMENT, "hub.challenge is missing");
    }
    if (strlen(challenge) >= sizeof reply->body) {
        reply->status = 400;
        return err_set(e, ERR_INVALID_ARGUMENT, "hub.challenge is longer than %zu bytes",
                       sizeof reply->body - 1);
    }
    reply->status = 200;
    utf8_copy(reply->body, sizeof reply->body, challenge);
    return 0;
}

/* ================= Graph API errors ================= */

/* A number that Graph sends as an integer (or, through some proxies, as a string). */
static long code_value(json_t *v)
{
    if (json_is_integer(v)) return (long)json_integer_value(v);
    if (json_is_string(v)) return strtol(json_string_value(v), NULL, 10);
    return 0;
}

void channel_meta_error_parse(const char *body, size_t len, channel_meta_error_t *out)
{
    memset(out, 0, sizeof *out);
    if (!body || !len) return;
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *er = json_object_get(root, "error");
    if (json_is_object(er)) {
        out->found = 1;
        out->code = code_value(json_object_get(er, "code"));
        out->subcode = code_value(json_object_get(er, "error_subcode"));
        out->transient = json_is_true(json_object_get(er, "is_transient"));
        const char *msg = channel_str_or(er, "message");
        const char *details = channel_str_or(json_object_get(er, "error_data"), "details");
        buf_t b;
        buf_init(&b);
        buf_puts(&b, msg);
        if (*details && strcmp(details, msg) != 0)
            buf_printf(&b, "%s(%s)", *msg ? " " : "", details);
        utf8_copy(out->message, sizeof out->message, b.data);
        buf_free(&b);
    }
    json_decref(root);
}

const char *channel_meta_reason(long code, long subcode, int *retry)
{
    static const struct {
        long code, subcode; /* subcode 0 = any */
        const char *reason;
        int retry;
    } map[] = {
        /* Graph API, all products */
        {1, 0, "CHANNEL_FAILURE", 1},  /* API unknown: possible server error */
        {2, 0, "CHANNEL_FAILURE", 1},  /* API service: temporary downtime */
        {4, 0, "RATE_LIMITED", 1},     /* application request limit */
        {17, 0, "RATE_LIMITED", 1},    /* user request limit */
        {32, 0, "RATE_LIMITED", 1},    /* page request limit */
        {613, 0, "RATE_LIMITED", 1},   /* calls within one hour exceeded */
        {80007, 0, "RATE_LIMITED", 1}, /* WhatsApp Business Account rate limit */
        {3, 0, "NO_PERMISSION", 0},    /* capability */
        {10, 2018278, "OUTSIDE_ALLOWED_SENDING_WINDOW", 0}, /* Messenger: outside 24h */
        {10, 2534022, "OUTSIDE_ALLOWED_SENDING_WINDOW", 0}, /* Instagram: outside window */
        {10, 0, "NO_PERMISSION", 0},
        {102, 0, "INACTIVE_CREDENTIAL", 0}, /* session key invalid */
        {190, 0, "INACTIVE_CREDENTIAL", 0}, /* access token expired or invalid */
        {100, 2018001, "RECIPIENT_INVALID_CHANNEL_IDENTITY", 0}, /* Messenger: no such user */
        {100, 2534014, "RECIPIENT_INVALID_CHANNEL_IDENTITY", 0}, /* Instagram: no such user */
        {100, 2018109, "MEDIA_TOO_LARGE", 0},
        {100, 2018047, "MEDIA_NOT_REACHABLE", 0},
        {100, 0, "BAD_REQUEST", 0},
        {368, 0, "DELIVERY_REJECTED_DUE_TO_POLICY", 0},
        {551, 0, "RECIPIENT_NOT_REACHABLE", 0}, /* Messenger: person not available */
        {1200, 0, "CHANNEL_FAILURE", 1},        /* Messenger: temporary send failure */
        /* WhatsApp Cloud API */
        {130429, 0, "RATE_LIMITED", 1},    /* throughput reached */
        {131048, 0, "RATE_LIMITED", 1},    /* spam rate limit */
        {131056, 0, "RATE_LIMITED", 1},    /* pair rate limit */
        {131000, 0, "CHANNEL_FAILURE", 1}, /* something went wrong */
        {131016, 0, "CHANNEL_FAILURE", 1}, /* service unavailable */
        {133004, 0, "CHANNEL_FAILURE", 1}, /* server temporarily unavailable */
        {131005, 0, "NO_PERMISSION", 0},
        {131008, 0, "BAD_REQUEST", 0},                        /* required parameter missing */
        {131009, 0, "BAD_REQUEST", 0},                        /* parameter value not valid */
        {131021, 0, "RECIPIENT_INVALID_CHANNEL_IDENTITY", 0}, /* recipient is the sender */
        {131026, 0, "RECIPIENT_NOT_REACHABLE", 0},            /* message undeliverable */
        {131030, 0, "RECIPIENT_NOT_REACHABLE", 0},            /* not in the allowed list */
        {131031, 0, "CHANNEL_BAD_CONFIGURATION", 0},          /* account locked */
        {131042, 0, "CHANNEL_BAD_CONFIGURATION", 0},          /* payment issue */
        {131045, 0, "CHANNEL_BAD_CONFIGURATION", 0},          /* number not registered */
        {133010, 0, "CHANNEL_BAD_CONFIGURATION", 0},          /* number not registered */
        {131047, 0, "OUTSIDE_ALLOWED_SENDING_WINDOW", 0},     /* re-engagement message */
        {131049, 0, "DELIVERY_REJECTED_DUE_TO_POLICY", 0},    /* ecosystem protection */
        {131050, 0, "RECIPIENT_NOT_OPTED_IN", 0},             /* user stopped marketing */
        {131051, 0, "UNSUPPORTED_OPERATION", 0},              /* unsupported message type */
        {131052, 0, "MEDIA_NOT_REACHABLE", 0},                /* media download error */
        {131053, 0, "MEDIA_NOT_REACHABLE", 0},                /* media upload error */
        {132000, 0, "TEMPLATE_INSUFFICIENT_PARAMETERS", 0},
        {132001, 0, "TEMPLATE_NOT_FOUND", 0},
        {132005, 0, "BAD_REQUEST", 0},                      /* hydrated text too long */
        {132007, 0, "DELIVERY_REJECTED_DUE_TO_POLICY", 0},  /* template policy */
        {132012, 0, "TEMPLATE_INSUFFICIENT_PARAMETERS", 0}, /* parameter format */
        {132015, 0, "TEMPLATE_NOT_FOUND", 0},               /* template paused */
        {132016, 0, "TEMPLATE_NOT_FOUND", 0},               /* template disabled */
    };
    *retry = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].code != code || (map[i].subcode && map[i].subcode != subcode)) continue;
        *retry = map[i].retry;
        return map[i].reason;
    }
    if (code >= 200 && code <= 299) return "NO_PERMISSION"; /* API permission codes */
    return NULL;
}

void channel_meta_failure(long status, const char *body, size_t len, channel_result_t *out)
{
    channel_meta_error_t ge;
    channel_meta_error_parse(body, len, &ge);
    int retry = 0;
    const char *reason = ge.found ? channel_meta_reason(ge.code, ge.subcode, &retry) : NULL;
    if (ge.transient || status == 0 || status == 429 || status >= 500) retry = 1;
    if (!reason) {
        if (status == 429)
            reason = "RATE_LIMITED";
        else if (status == 401)
            reason = "INACTIVE_CREDENTIAL";
        else if (status == 403)
            reason = "NO_PERMISSION";
        else
            reason = "CHANNEL_FAILURE";
    }
    out->outcome = retry ? CHANNEL_RETRY : CHANNEL_FAILED;
    utf8_copy(out->reason_code, sizeof out->reason_code, reason);
    if (ge.found && ge.message[0])
        utf8_copy(out->description, sizeof out->description, ge.message);
    else if (status == 0)
        utf8_copy(out->description, sizeof out->description, "no answer from the provider");
    else
        snprintf(out->description, sizeof out->description, "HTTP %ld from the provider", status);
}

int channel_meta_check_result(long status, const char *body, size_t len, char *description,
                              size_t cap)
{
    if (cap) description[0] = '\0';
    if (status >= 200 && status < 300) return 0;
    channel_meta_error_t ge;
    channel_meta_error_parse(body, len, &ge);
    if (!cap) return -1;
    if (ge.found && ge.message[0])
        utf8_copy(description, cap, ge.message);
    else if (status == 0)
        utf8_copy(description, cap, "no answer from the provider");
    else
        snprintf(description, cap, "HTTP %ld from the provider", status);
    return -1;
}

/* ================= Messenger Platform: outbound ================= */

static size_t msgr_len(const channel_meta_msgr_t *o, const char *s)
{
    return o->text_in_bytes ? strlen(s) : channel_meta_chars(s);
}

static json_t *msgr_text(const char *text, const char *what, const channel_meta_msgr_t *o, err_t *e)
{
    size_t n = msgr_len(o, text);
    if (n > o->text_max) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s is %zu %s long; %s allows at most %zu", what, n,
                o->text_in_bytes ? "bytes" : "characters", o->channel, o->text_max);
        return NULL;
    }
    return json_pack("{s:s}", "text", text);
}

/* The message as channel_render_text, for what the native forms cannot hold. */
static json_t *msgr_fallback(json_t *m, const char *type, const channel_meta_msgr_t *o, err_t *e)
{
    char *t = channel_render_text(m, e);
    if (!t) return NULL;
    char what[96];
    snprintf(what, sizeof what, "the text form of this %s", type);
    json_t *r = msgr_text(t, what, o, e);
    free(t);
    return r;
}

/* A quick_replies array when every choice is a text choice with a payload that fits; NULL
 * when the choices need another form. Titles over 20 characters are cut by Meta itself. */
static json_t *msgr_quick_replies(json_t *choices)
{
    json_t *arr = json_array(), *c;
    size_t i;
    if (!json_array_size(choices) || json_array_size(choices) > 13) goto no;
    json_array_foreach(choices, i, c)
    {
        json_t *tm = json_object_get(c, "text_message");
        const char *title = channel_str_or(tm, "text");
        const char *payload = channel_str_or(c, "postback_data");
        if (!json_is_object(tm) || !*title) goto no;
        if (!*payload) payload = title;
        if (channel_meta_chars(payload) > 1000) goto no;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "content_type", "text", "title",
                                             title, "payload", payload));
    }
    return arr;
no:
    json_decref(arr);
    return NULL;
}

/* A Send API button for a choice (postback, web_url, phone_number), or NULL if the choice
 * has no button form on the channel. Button titles are limited to 20 characters. */
static json_t *msgr_button(json_t *c, const channel_meta_msgr_t *o)
{
    json_t *v;
    if ((v = json_object_get(c, "text_message"))) {
        const char *title = channel_str_or(v, "text");
        const char *payload = channel_str_or(c, "postback_data");
        if (!*payload) payload = title;
        if (!*title || channel_meta_chars(title) > 20 || channel_meta_chars(payload) > 1000)
            return NULL;
        return json_pack("{s:s,s:s,s:s}", "type", "postback", "title", title, "payload", payload);
    }
    if ((v = json_object_get(c, "url_message"))) {
        const char *title = channel_str_or(v, "title"), *url = channel_str_or(v, "url");
        if (!*title || !*url || channel_meta_chars(title) > 20) return NULL;
        return json_pack("{s:s,s:s,s:s}", "type", "web_url", "url", url, "title", title);
    }
    if ((v = json_object_get(c, "call_message")) && o->phone_buttons) {
        const char *title = channel_str_or(v, "title"), *ph = channel_str_or(v, "phone_number");
        if (!*title || !*ph || channel_meta_chars(title) > 20) return NULL;
        return json_pack("{s:s,s:s,s:s}", "type", "phone_number", "title", title, "payload", ph);
    }
    return NULL;
}

/* Up to max buttons for choices, or NULL when they do not fit. */
static json_t *msgr_buttons(json_t *choices, size_t max, const channel_meta_msgr_t *o)
{
    size_t i, n = json_array_size(choices);
    json_t *c;
    if (!n || n > max) return NULL;
    json_t *arr = json_array();
    json_array_foreach(choices, i, c)
    {
        json_t *b = msgr_button(c, o);
        if (!b) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, b);
    }
    return arr;
}

/* A generic template element for a card (title and subtitle at most 80 characters, an
 * image, at most 3 buttons), or NULL when the card does not fit one. */
static json_t *msgr_element(json_t *card, const channel_meta_msgr_t *o)
{
    const char *title = channel_str_or(card, "title"), *sub = channel_str_or(card, "description");
    json_t *media = json_object_get(card, "media_message");
    const char *url = channel_str_or(media, "url");
    json_t *choices = json_object_get(card, "choices");
    if (*url && strcmp(channel_meta_media_kind(url, channel_str_or(media, "filename_override")),
                       "image") != 0)
        return NULL;
    if (!*title) title = sub, sub = "";
    if (!*title || channel_meta_chars(title) > 80 || channel_meta_chars(sub) > 80) return NULL;
    json_t *el = json_pack("{s:s}", "title", title);
    if (*sub) json_object_set_new(el, "subtitle", json_string(sub));
    if (*url) json_object_set_new(el, "image_url", json_string(url));
    if (json_array_size(choices)) {
        json_t *b = msgr_buttons(choices, 3, o);
        if (!b) {
            json_decref(el);
            return NULL;
        }
        json_object_set_new(el, "buttons", b);
    }
    return el;
}

static json_t *msgr_attachment(const char *type, json_t *payload)
{
    return json_pack("{s:{s:s,s:o}}", "attachment", "type", type, "payload", payload);
}

static json_t *msgr_generic(json_t *elements)
{
    return msgr_attachment(
        "template", json_pack("{s:s,s:o}", "template_type", "generic", "elements", elements));
}

static json_t *msgr_media(json_t *media)
{
    const char *url = channel_str_or(media, "url");
    const char *kind = channel_meta_media_kind(url, channel_str_or(media, "filename_override"));
    if (strcmp(kind, "document") == 0) kind = "file";
    return msgr_attachment(kind, json_pack("{s:s}", "url", url));
}

json_t *channel_meta_msgr_message(json_t *m, const channel_meta_msgr_t *o, err_t *e)
{
    json_t *v;
    if (!json_is_object(m)) {
        err_set(e, ERR_INVALID_ARGUMENT, "app_message must be an object");
        return NULL;
    }
    if (json_is_object(v = json_object_get(m, "text_message")))
        return msgr_text(channel_str_or(v, "text"), "text_message.text", o, e);
    if (json_is_object(v = json_object_get(m, "media_message"))) return msgr_media(v);
    if (json_is_object(v = json_object_get(m, "choice_message"))) {
        const char *text = channel_str_or(json_object_get(v, "text_message"), "text");
        json_t *choices = json_object_get(v, "choices"), *arr;
        if (*text && msgr_len(o, text) <= o->text_max && (arr = msgr_quick_replies(choices)))
            return json_pack("{s:s,s:o}", "text", text, "quick_replies", arr);
        if (*text && o->button_template && channel_meta_chars(text) <= 640 &&
            (arr = msgr_buttons(choices, 3, o)))
            return msgr_attachment("template", json_pack("{s:s,s:s,s:o}", "template_type", "button",
                                                         "text", text, "buttons", arr));
        return msgr_fallback(m, "choice_message", o, e);
    }
    if (json_is_object(v = json_object_get(m, "card_message"))) {
        json_t *el = msgr_element(v, o), *media = json_object_get(v, "media_message");
        if (el) return msgr_generic(json_pack("[o]", el));
        if (json_is_object(media) && !*channel_str_or(v, "title") &&
            !*channel_str_or(v, "description") && !json_array_size(json_object_get(v, "choices")))
            return msgr_media(media);
        return msgr_fallback(m, "card_message", o, e);
    }
    if (json_is_object(v = json_object_get(m, "carousel_message"))) {
        json_t *cards = json_object_get(v, "cards"), *choices = json_object_get(v, "choices");
        json_t *els = json_array(), *c, *qr = NULL;
        size_t i;
        int ok = json_array_size(cards) > 0 && json_array_size(cards) <= 10;
        json_array_foreach(cards, i, c)
        {
            json_t *el = ok ? msgr_element(c, o) : NULL;
            if (!el) {
                ok = 0;
                break;
            }
            json_array_append_new(els, el);
        }
        if (ok && json_array_size(choices) && !(qr = msgr_quick_replies(choices))) ok = 0;
        if (!ok) {
            json_decref(els);
            return msgr_fallback(m, "carousel_message", o, e);
        }
        json_t *msg = msgr_generic(els);
        if (qr) json_object_set_new(msg, "quick_replies", qr);
        return msg;
    }
    /* location, contact_info and list have no Send API form; templates have no text. */
    static const char *const rest[] = {"location_message", "contact_info_message", "list_message",
                                       "template_message", NULL};
    for (const char *const *t = rest; *t; t++)
        if (json_object_get(m, *t)) return msgr_fallback(m, *t, o, e);
    err_set(e, ERR_INVALID_ARGUMENT, "app_message has no message type %s can carry", o->channel);
    return NULL;
}

void channel_meta_msgr_result(long status, const char *body, size_t len, channel_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (status >= 200 && status < 300) {
        out->outcome = CHANNEL_SENT;
        json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(root, "message_id"));
        if (id)
            utf8_copy(out->provider_id, sizeof out->provider_id, id);
        else
            utf8_copy(out->description, sizeof out->description,
                      "the provider accepted the message without a message_id");
        json_decref(root);
        return;
    }
    channel_meta_failure(status, body, len, out);
}

/* ================= webhook parsing (all three) ================= */

static int bad(channel_meta_parse_t *p, const char *what, const char *problem)
{
    return err_set(p->e, ERR_INVALID_ARGUMENT, "%s %s", what, problem);
}

/* Copy an identifier that must fit (they are short on every Meta channel). */
static int put_id(channel_meta_parse_t *p, char *dst, size_t cap, const char *src, const char *what)
{
    if (strlen(src) >= cap) return bad(p, what, "is too long");
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

channel_event_t *channel_meta_add_message(channel_meta_parse_t *p, const char *identity,
                                          const char *pid, int64_t ms, json_t *cm)
{
    channel_event_t *ev = channel_events_add(&p->ev);
    ev->kind = CHANNEL_EVENT_MESSAGE;
    ev->contact_message = cm;
    ev->time_ms = ms;
    if (put_id(p, ev->identity, sizeof ev->identity, identity, "the sender id") < 0 ||
        put_id(p, ev->provider_id, sizeof ev->provider_id, pid, "the message id") < 0)
        return NULL;
    return ev;
}

channel_event_t *channel_meta_add_receipt(channel_meta_parse_t *p, const char *identity,
                                          const char *pid, const char *status, int64_t ms)
{
    channel_event_t *ev = channel_events_add(&p->ev);
    ev->kind = CHANNEL_EVENT_RECEIPT;
    ev->time_ms = ms;
    utf8_copy(ev->status, sizeof ev->status, status);
    if (put_id(p, ev->identity, sizeof ev->identity, identity, "the recipient id") < 0 ||
        put_id(p, ev->provider_id, sizeof ev->provider_id, pid, "the message id") < 0)
        return NULL;
    return ev;
}

void channel_meta_parse_done(channel_meta_parse_t *p, channel_events_t *out)
{
    for (size_t i = 0; i < p->ev.n; i++)
        *channel_events_add(out) = p->ev.items[i];
    free(p->ev.items);
    memset(&p->ev, 0, sizeof p->ev);
}

/* Optional typed fields: 0 absent, 1 present, -1 wrong type. */
int channel_meta_opt_string(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                            const char **out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        err_set(p->e, ERR_INVALID_ARGUMENT, "%s.%s must be a string, got %s", path, key,
                jsonx_type_name(v));
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int channel_meta_opt_type(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                          json_type t, const char *tname, json_t **out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_typeof(v) != t) {
        err_set(p->e, ERR_INVALID_ARGUMENT, "%s.%s must be %s, got %s", path, key, tname,
                jsonx_type_name(v));
        return -1;
    }
    *out = v;
    return 1;
}

int channel_meta_need_string(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                             const char **out)
{
    int got = channel_meta_opt_string(p, o, key, path, out);
    if (got < 0) return -1;
    if (!got || !**out) {
        err_set(p->e, ERR_INVALID_ARGUMENT, "%s.%s is required", path, key);
        return -1;
    }
    return 0;
}

/* A millisecond timestamp, as an integer (or, in Meta's dashboard test events, a string of
 * digits); 0 when absent. */
static int opt_ms(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                  int64_t *ms)
{
    json_t *v = json_object_get(o, key);
    *ms = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ms = (int64_t)json_integer_value(v);
        return 1;
    }
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (n > 0 && n <= 15 && strspn(s, "0123456789") == n) {
        *ms = (int64_t)strtoll(s, NULL, 10);
        return 1;
    }
    err_set(p->e, ERR_INVALID_ARGUMENT, "%s.%s must be a non-negative integer", path, key);
    return -1;
}

json_t *channel_meta_fallback_message(json_t *raw, const char *why)
{
    char *s = channel_meta_dump(raw);
    json_t *r = json_pack("{s:{s:s,s:{s:s,s:s}}}", "fallback_message", "raw_message", s, "reason",
                          "code", "UNSUPPORTED_OPERATION", "description", why);
    free(s);
    return r;
}

json_t *channel_meta_choice_response(const char *message_id, const char *postback)
{
    return json_pack("{s:{s:s,s:s}}", "choice_response_message", "message_id", message_id,
                     "postback_data", postback);
}

/* ================= Messenger Platform: inbound ================= */

/* One attachment of a Messenger/Instagram message as a ContactMessage. */
static json_t *msgr_attachment_in(channel_meta_parse_t *p, json_t *a, const char *channel)
{
    const char *type = NULL, *url = NULL, *title = NULL;
    json_t *payload = NULL, *coords = NULL;
    if (!json_is_object(a)) {
        err_set(p->e, ERR_INVALID_ARGUMENT, "message.attachments[] must be objects");
        return NULL;
    }
    if (channel_meta_need_string(p, a, "type", "message.attachments[]", &type) < 0 ||
        channel_meta_opt_type(p, a, "payload", "message.attachments[]", JSON_OBJECT, "an object",
                              &payload) < 0 ||
        channel_meta_opt_string(p, payload, "url", "message.attachments[].payload", &url) < 0 ||
        channel_meta_opt_string(p, a, "title", "message.attachments[]", &title) < 0 ||
        channel_meta_opt_type(p, payload, "coordinates", "message.attachments[].payload",
                              JSON_OBJECT, "an object", &coords) < 0)
        return NULL;
    if (strcmp(type, "location") == 0 && coords) {
        json_t *lat = json_object_get(coords, "lat"), *lng = json_object_get(coords, "long");
        if (!json_is_number(lat) || !json_is_number(lng)) {
            err_set(p->e, ERR_INVALID_ARGUMENT,
                    "location attachments need numeric payload.coordinates.lat and .long");
            return NULL;
        }
        json_t *loc = json_object();
        if (title && *title) json_object_set_new(loc, "title", json_string(title));
        json_object_set_new(loc, "coordinates",
                            json_pack("{s:O,s:O}", "latitude", lat, "longitude", lng));
        return json_pack("{s:o}", "location_message", loc);
    }
    if (url && *url) return json_pack("{s:{s:s}}", "media_message", "url", url);
    char why[128];
    snprintf(why, sizeof why, "%s attachment type %.40s is not supported", channel, type);
    return channel_meta_fallback_message(a, why);
}

/* The provider id of the n-th event made from one message: mid, then mid#2, mid#3, ... */
static void nth_id(char *out, size_t cap, const char *mid, size_t n)
{
    if (n == 0)
        utf8_copy(out, cap, mid);
    else
        snprintf(out, cap, "%.150s#%zu", mid, n + 1);
}

static int msgr_message_in(channel_meta_parse_t *p, json_t *msg, const char *sender, int64_t ts,
                           const char *channel)
{
    const char *mid = NULL, *text = NULL, *payload = NULL;
    json_t *qr = NULL, *atts = NULL, *a;
    if (json_is_true(json_object_get(msg, "is_echo")) ||
        json_is_true(json_object_get(msg, "is_deleted")))
        return 0; /* our own sends echoed back, and unsends */
    if (channel_meta_need_string(p, msg, "mid", "message", &mid) < 0 ||
        channel_meta_opt_string(p, msg, "text", "message", &text) < 0 ||
        channel_meta_opt_type(p, msg, "quick_reply", "message", JSON_OBJECT, "an object", &qr) <
            0 ||
        channel_meta_opt_type(p, msg, "attachments", "message", JSON_ARRAY, "an array", &atts) < 0)
        return -1;
    if (qr) {
        if (channel_meta_need_string(p, qr, "payload", "message.quick_reply", &payload) < 0)
            return -1;
        return channel_meta_add_message(p, sender, mid, ts,
                                        channel_meta_choice_response(mid, payload))
                   ? 0
                   : -1;
    }
    size_t n = 0, i;
    char pid[160];
    if (text && *text) {
        if (!channel_meta_add_message(p, sender, mid, ts,
                                      json_pack("{s:{s:s}}", "text_message", "text", text)))
            return -1;
        n++;
    }
    json_array_foreach(atts, i, a)
    {
        json_t *cm = msgr_attachment_in(p, a, channel);
        if (!cm) return -1;
        nth_id(pid, sizeof pid, mid, n++);
        if (!channel_meta_add_message(p, sender, pid, ts, cm)) return -1;
    }
    if (n == 0) {
        char why[96];
        snprintf(why, sizeof why, "%s message without text or attachments", channel);
        if (!channel_meta_add_message(p, sender, mid, ts, channel_meta_fallback_message(msg, why)))
            return -1;
    }
    return 0;
}

static int msgr_item(channel_meta_parse_t *p, json_t *it, const char *channel)
{
    json_t *msg = NULL, *pb = NULL, *dl = NULL, *rd = NULL, *sender = NULL;
    const char *sid = NULL;
    int64_t ts = 0;
    if (!json_is_object(it)) return bad(p, "entry[].messaging[]", "must be an object");
    if (channel_meta_opt_type(p, it, "message", "messaging[]", JSON_OBJECT, "an object", &msg) <
            0 ||
        channel_meta_opt_type(p, it, "postback", "messaging[]", JSON_OBJECT, "an object", &pb) <
            0 ||
        channel_meta_opt_type(p, it, "delivery", "messaging[]", JSON_OBJECT, "an object", &dl) <
            0 ||
        channel_meta_opt_type(p, it, "read", "messaging[]", JSON_OBJECT, "an object", &rd) < 0)
        return -1;
    if (!msg && !pb && !dl && !rd) return 0; /* optins, referrals, reactions, handovers, ... */
    if (channel_meta_opt_type(p, it, "sender", "messaging[]", JSON_OBJECT, "an object", &sender) <
            0 ||
        channel_meta_need_string(p, sender, "id", "messaging[].sender", &sid) < 0 ||
        opt_ms(p, it, "timestamp", "messaging[]", &ts) < 0)
        return -1;
    if (msg) return msgr_message_in(p, msg, sid, ts, channel);
    if (pb) {
        const char *payload = NULL, *mid = NULL;
        if (channel_meta_need_string(p, pb, "payload", "postback", &payload) < 0 ||
            channel_meta_opt_string(p, pb, "mid", "postback", &mid) < 0)
            return -1;
        char synth[160];
        if (!mid || !*mid) { /* older postbacks carry no mid: derive a stable one */
            snprintf(synth, sizeof synth, "postback-%.100s-%lld", sid, (long long)ts);
            mid = synth;
        }
        return channel_meta_add_message(p, sid, mid, ts, channel_meta_choice_response(mid, payload))
                   ? 0
                   : -1;
    }
    int64_t watermark = 0;
    if (dl) {
        json_t *mids = NULL, *m;
        size_t i;
        if (channel_meta_opt_type(p, dl, "mids", "delivery", JSON_ARRAY, "an array", &mids) < 0 ||
            opt_ms(p, dl, "watermark", "delivery", &watermark) < 0)
            return -1;
        if (!json_array_size(mids))
            return channel_meta_add_receipt(p, sid, "", "DELIVERED", watermark) ? 0 : -1;
        json_array_foreach(mids, i, m)
        {
            if (!json_is_string(m)) return bad(p, "delivery.mids", "must hold strings");
            if (!channel_meta_add_receipt(p, sid, json_string_value(m), "DELIVERED",
                                          watermark ? watermark : ts))
                return -1;
        }
        return 0;
    }
    const char *mid = NULL;
    if (channel_meta_opt_string(p, rd, "mid", "read", &mid) < 0 ||
        opt_ms(p, rd, "watermark", "read", &watermark) < 0)
        return -1;
    return channel_meta_add_receipt(p, sid, mid ? mid : "", "READ", watermark ? watermark : ts)
               ? 0
               : -1;
}

int channel_meta_msgr_parse(const channel_inbound_t *in, const char *object, int changes,
                            channel_events_t *out, err_t *e)
{
    channel_meta_parse_t p = {.e = e};
    const char *obj = NULL;
    json_t *entries = NULL, *en, *it;
    size_t i, k;
    const char *channel = strcmp(object, "instagram") == 0 ? "Instagram" : "Messenger";
    json_t *root = jsonx_parse(in->body ? in->body : "", in->body ? in->body_len : 0, e);
    if (!root) return -1;
    int rc = -1;
    if (!json_is_object(root)) {
        err_set(e, ERR_INVALID_ARGUMENT, "webhook payload must be a JSON object");
        goto done;
    }
    if (channel_meta_need_string(&p, root, "object", "payload", &obj) < 0) goto done;
    if (strcmp(obj, object) != 0) {
        rc = 0; /* another product's events: nothing for this channel */
        goto done;
    }
    int got = channel_meta_opt_type(&p, root, "entry", "payload", JSON_ARRAY, "an array", &entries);
    if (got <= 0) {
        if (got == 0) err_set(e, ERR_INVALID_ARGUMENT, "payload.entry is required");
        goto done;
    }
    json_array_foreach(entries, i, en)
    {
        json_t *messaging = NULL, *chs = NULL;
        if (!json_is_object(en)) {
            bad(&p, "entry[]", "must be an object");
            goto done;
        }
        if (channel_meta_opt_type(&p, en, "messaging", "entry[]", JSON_ARRAY, "an array",
                                  &messaging) < 0 ||
            (changes &&
             channel_meta_opt_type(&p, en, "changes", "entry[]", JSON_ARRAY, "an array", &chs) < 0))
            goto done;
        json_array_foreach(messaging, k, it) if (msgr_item(&p, it, channel) < 0) goto done;
        json_array_foreach(chs, k, it)
        {
            const char *field = NULL;
            json_t *value = NULL;
            if (!json_is_object(it)) {
                bad(&p, "entry[].changes[]", "must be an object");
                goto done;
            }
            if (channel_meta_opt_string(&p, it, "field", "entry[].changes[]", &field) < 0)
                goto done;
            if (!field || strcmp(field, "messages") != 0) continue;
            if (channel_meta_opt_type(&p, it, "value", "entry[].changes[]", JSON_OBJECT,
                                      "an object", &value) < 0 ||
                msgr_item(&p, value, channel) < 0)
                goto done;
        }
    }
    rc = 0;
done:
    json_decref(root);
    if (rc == 0)
        channel_meta_parse_done(&p, out);
    else
        channel_events_free(&p.ev);
    return rc;
}
