/* rcs.c: the RCS channel adapter (Google RCS Business Messaging, RBM API v1). It owns the
 * translation between Parley's AppMessage/ContactMessage shapes and RBM agent messages
 * (text, contentInfo files, rich cards, carousels, suggested replies and actions), RBM's
 * Google-style error answers mapped to outcomes and Sinch reason codes, the X-Goog-Signature
 * check (HMAC-SHA512, the one place Parley calls libsodium directly: sec.h has only
 * SHA-256), the webhook's clientToken/secret handshake, parsing of user messages and
 * events (Pub/Sub push envelopes or plain JSON) and an agent capability lookup as the
 * credential check. The token is an OAuth access token Parley does not mint (no service
 * account JWT signing). Pure translation: no I/O here (channel.h);
 * docs/channels.md documents every mapping. */
#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/sec.h"
#include "channels/channel.h"
#include "base/utf8.h"
#include "channels/render.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RCS_TEXT_MAX        3072 /* contentMessage.text, characters */
#define RCS_SUGGESTIONS_MAX 11   /* suggestions on a message */
#define RCS_CARD_SUGG_MAX   4    /* suggestions on a card */
#define RCS_SUGG_TEXT_MAX   25   /* suggestion text, characters */
#define RCS_POSTBACK_MAX    2048 /* postbackData, characters */
#define RCS_TITLE_MAX       200  /* cardContent.title, characters */
#define RCS_DESCRIPTION_MAX 2000 /* cardContent.description, characters */
#define RCS_CAROUSEL_MIN    2
#define RCS_CAROUSEL_MAX    10
#define RCS_EVENT_TITLE_MAX 100            /* createCalendarEventAction.title */
#define RCS_EVENT_DESC_MAX  500            /* createCalendarEventAction.description */
#define RCS_CHECK_NUMBER    "+10000000000" /* capability lookup target of the credential check */

/* ---- small helpers ---- */

static int check_len(err_t *e, const char *what, const char *s, size_t max)
{
    size_t n = utf8_len(s);
    return n > max ? channel_too_long(e, "RCS", what, n, max, "characters") : 0;
}

/* The static_bearer credential: {"claimed_identity": agent id, "token": OAuth token}. */
static json_t *rcs_cred(json_t *cred)
{
    json_t *inner = json_object_get(cred, "static_bearer");
    return json_is_object(inner) ? inner : cred;
}

static int rcs_creds(json_t *cred, const char **agent, const char **token, err_t *e)
{
    json_t *c = rcs_cred(cred);
    *agent = channel_str(c, "claimed_identity");
    *token = channel_str(c, "token");
    if (!*agent || !**agent)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "RCS credential needs the agent id as claimed_identity");
    if (!*token || !**token)
        return err_set(e, ERR_FAILED_PRECONDITION, "RCS credential needs an OAuth access token");
    for (const char *p = *token; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return err_set(e, ERR_FAILED_PRECONDITION,
                           "RCS access token has a character a token cannot have");
    return 0;
}

/* Percent-encode a query value (RFC 3986 unreserved characters pass). */
static void qenc(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            buf_append(b, s, 1);
        else
            buf_printf(b, "%%%02X", c);
    }
}

/* The base URL without trailing slashes (the default when unset). */
static void put_base(buf_t *b, const char *base)
{
    if (!base || !*base) base = "https://rcsbusinessmessaging.googleapis.com/v1";
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    buf_append(b, base, n);
}

/* ---- suggestions ---- */

/* One Choice as an RBM Suggestion: text choices are suggested replies, the others
 * suggested actions. postbackData is the choice's postback_data, else its text/title. */
static json_t *rcs_suggestion(json_t *c, err_t *e)
{
    json_t *v, *action = NULL;
    const char *pb = channel_str(c, "postback_data"), *text;
    if ((v = json_object_get(c, "text_message"))) {
        text = channel_str_or(v, "text");
    } else if ((v = json_object_get(c, "url_message"))) {
        text = channel_str_or(v, "title");
        action = json_pack("{s:{s:s}}", "openUrlAction", "url", channel_str_or(v, "url"));
    } else if ((v = json_object_get(c, "call_message"))) {
        const char *ph = channel_str_or(v, "phone_number");
        char num[80];
        snprintf(num, sizeof num, "%s%s", isdigit((unsigned char)ph[0]) ? "+" : "", ph);
        text = channel_str_or(v, "title");
        action = json_pack("{s:{s:s}}", "dialAction", "phoneNumber", num);
    } else if ((v = json_object_get(c, "location_message"))) {
        json_t *co = json_object_get(v, "coordinates");
        text = channel_str_or(v, "title");
        const char *label = channel_str(v, "label");
        action = json_pack("{s:{s:{s:f,s:f},s:s}}", "viewLocationAction", "latLong", "latitude",
                           json_number_value(json_object_get(co, "latitude")), "longitude",
                           json_number_value(json_object_get(co, "longitude")), "label",
                           label && *label ? label : text);
    } else if ((v = json_object_get(c, "calendar_message"))) {
        const char *title = channel_str_or(v, "event_title"),
                   *desc = channel_str(v, "event_description");
        if (!desc || !*desc) desc = title;
        if (check_len(e, "calendar event title", title, RCS_EVENT_TITLE_MAX) < 0 ||
            check_len(e, "calendar event description", desc, RCS_EVENT_DESC_MAX) < 0)
            return NULL;
        text = channel_str_or(v, "title");
        action = json_pack("{s:{s:s,s:s,s:s,s:s}}", "createCalendarEventAction", "startTime",
                           channel_str_or(v, "event_start"), "endTime",
                           channel_str_or(v, "event_end"), "title", title, "description", desc);
    } else if ((v = json_object_get(c, "share_location_message"))) {
        text = channel_str_or(v, "title");
        action = json_pack("{s:{}}", "shareLocationAction");
    } else {
        return err_set(e, ERR_INVALID_ARGUMENT, "RCS cannot carry this choice type"), NULL;
    }
    const char *data = pb && *pb ? pb : text;
    if (check_len(e, "suggestion text", text, RCS_SUGG_TEXT_MAX) < 0 ||
        check_len(e, "suggestion postbackData", data, RCS_POSTBACK_MAX) < 0) {
        json_decref(action);
        return NULL;
    }
    if (!action) return json_pack("{s:{s:s,s:s}}", "reply", "text", text, "postbackData", data);
    json_t *a = json_pack("{s:s,s:s}", "text", text, "postbackData", data);
    json_object_update(a, action);
    json_decref(action);
    return json_pack("{s:o}", "action", a);
}

/* choices -> o.suggestions (at most max). */
static int rcs_suggestions(json_t *o, json_t *choices, size_t max, const char *where, err_t *e)
{
    size_t n = json_array_size(choices), i;
    json_t *c;
    if (!n) return 0;
    if (n > max)
        return err_set(e, ERR_INVALID_ARGUMENT, "RCS allows at most %zu suggestions on %s, got %zu",
                       max, where, n);
    json_t *arr = json_array();
    json_array_foreach(choices, i, c)
    {
        json_t *s = rcs_suggestion(c, e);
        if (!s) {
            json_decref(arr);
            return -1;
        }
        json_array_append_new(arr, s);
    }
    json_object_set_new(o, "suggestions", arr);
    return 0;
}

/* ---- content ---- */

static int set_text(json_t *o, const char *text, err_t *e)
{
    size_t n = utf8_len(text);
    if (n == 0) return err_set(e, ERR_INVALID_ARGUMENT, "RCS cannot send an empty text");
    if (n > RCS_TEXT_MAX)
        return channel_too_long(e, "RCS", "message text", n, RCS_TEXT_MAX, "characters");
    json_object_set_new(o, "text", json_string(text));
    return 0;
}

static int set_rendered(json_t *o, json_t *m, err_t *e)
{
    char *text = channel_render_text(m, e);
    if (!text) return -1;
    int rc = set_text(o, text, e);
    free(text);
    return rc;
}

static json_t *content_info(json_t *media)
{
    json_t *ci = json_pack("{s:s}", "fileUrl", channel_str_or(media, "url"));
    const char *thumb = channel_str(media, "thumbnail_url");
    if (thumb && *thumb) json_object_set_new(ci, "thumbnailUrl", json_string(thumb));
    return ci;
}

static json_t *card_content(json_t *card, size_t idx, err_t *e)
{
    const char *title = channel_str(card, "title"), *desc = channel_str(card, "description");
    json_t *media = json_object_get(card, "media_message");
    char where[32];
    snprintf(where, sizeof where, "card %zu", idx);
    if ((title && check_len(e, "card title", title, RCS_TITLE_MAX) < 0) ||
        (desc && check_len(e, "card description", desc, RCS_DESCRIPTION_MAX) < 0))
        return NULL;
    json_t *cc = json_object();
    if (title && *title) json_object_set_new(cc, "title", json_string(title));
    if (desc && *desc) json_object_set_new(cc, "description", json_string(desc));
    if (json_is_object(media)) {
        const char *h = channel_str(card, "height");
        if (!h || (strcmp(h, "SHORT") && strcmp(h, "TALL"))) h = "MEDIUM";
        json_object_set_new(
            cc, "media", json_pack("{s:s,s:o}", "height", h, "contentInfo", content_info(media)));
    }
    if (rcs_suggestions(cc, json_object_get(card, "choices"), RCS_CARD_SUGG_MAX, where, e) < 0) {
        json_decref(cc);
        return NULL;
    }
    return cc;
}

static json_t *standalone(json_t *cc)
{
    return json_pack("{s:{s:s,s:o}}", "standaloneCard", "cardOrientation", "VERTICAL",
                     "cardContent", cc);
}

static int build_carousel(json_t *o, json_t *v, err_t *e)
{
    json_t *cards = json_object_get(v, "cards"), *card;
    size_t n = json_array_size(cards), i;
    if (n > RCS_CAROUSEL_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "RCS carousels hold %d to %d cards, got %zu",
                       RCS_CAROUSEL_MIN, RCS_CAROUSEL_MAX, n);
    json_t *contents = json_array();
    json_array_foreach(cards, i, card)
    {
        json_t *cc = card_content(card, i, e);
        if (!cc) {
            json_decref(contents);
            return -1;
        }
        json_array_append_new(contents, cc);
    }
    if (n < RCS_CAROUSEL_MIN) { /* one card: RBM carousels need two, so a standalone card */
        json_object_set_new(o, "richCard", standalone(json_incref(json_array_get(contents, 0))));
        json_decref(contents);
    } else {
        json_object_set_new(o, "richCard",
                            json_pack("{s:{s:s,s:o}}", "carouselCard", "cardWidth", "MEDIUM",
                                      "cardContents", contents));
    }
    return rcs_suggestions(o, json_object_get(v, "choices"), RCS_SUGGESTIONS_MAX, "a message", e);
}

/* A list fits as text + suggested replies when every item is a choice that fits a chip;
 * otherwise it goes as its plain-text rendering. */
static int build_list(json_t *o, json_t *v, json_t *m, err_t *e)
{
    size_t i, k, n = 0;
    json_t *sec, *it, *choices = json_array();
    int fits = 1;
    json_array_foreach(json_object_get(v, "sections"), i, sec)
    {
        json_array_foreach(json_object_get(sec, "items"), k, it)
        {
            json_t *ch = json_object_get(it, "choice");
            const char *pb = channel_str(ch, "postback_data");
            if (!json_is_object(ch) || utf8_len(channel_str_or(ch, "title")) > RCS_SUGG_TEXT_MAX ||
                (pb && utf8_len(pb) > RCS_POSTBACK_MAX) || ++n > RCS_SUGGESTIONS_MAX) {
                fits = 0;
                continue;
            }
            json_t *c = json_pack("{s:{s:s}}", "text_message", "text", channel_str_or(ch, "title"));
            if (pb) json_object_set_new(c, "postback_data", json_string(pb));
            json_array_append_new(choices, c);
        }
    }
    int rc;
    if (!fits) {
        rc = set_rendered(o, m, e);
    } else {
        buf_t b;
        buf_init(&b);
        buf_puts(&b, channel_str_or(v, "title"));
        if (*channel_str_or(v, "description"))
            buf_printf(&b, "\n%s", channel_str_or(v, "description"));
        rc = set_text(o, b.data, e);
        if (rc == 0) rc = rcs_suggestions(o, choices, RCS_SUGGESTIONS_MAX, "a message", e);
        buf_free(&b);
    }
    json_decref(choices);
    return rc;
}

static int build_location(json_t *o, json_t *v, err_t *e)
{
    const char *title = channel_str_or(v, "title"), *label = channel_str(v, "label");
    buf_t b;
    buf_init(&b);
    buf_puts(&b, title);
    if (label && *label) buf_printf(&b, "%s%s", b.len ? "\n" : "", label);
    int rc = set_text(o, b.data ? b.data : "", e);
    buf_free(&b);
    if (rc < 0) return -1;
    /* the chip's text: the title when it fits, else a generic one */
    json_t *choice = json_pack("{s:O}", "location_message", v);
    json_t *chip = json_object_get(choice, "location_message");
    if (utf8_len(title) > RCS_SUGG_TEXT_MAX || !*title) {
        chip = json_deep_copy(chip);
        json_object_set_new(chip, "title", json_string("View location"));
        if (!label || !*label) json_object_set_new(chip, "label", json_string(title));
        json_object_set_new(choice, "location_message", chip);
    }
    json_object_set_new(choice, "postback_data", json_string("view_location"));
    json_t *arr = json_pack("[o]", choice);
    rc = rcs_suggestions(o, arr, RCS_SUGGESTIONS_MAX, "a message", e);
    json_decref(arr);
    return rc;
}

/* The AgentContentMessage for m, or NULL with e. */
static json_t *rcs_content(json_t *m, err_t *e)
{
    json_t *o = json_object(), *v;
    int rc = -1;
    if ((v = json_object_get(m, "text_message"))) {
        rc = set_text(o, channel_str_or(v, "text"), e);
    } else if ((v = json_object_get(m, "media_message"))) {
        json_object_set_new(o, "contentInfo", content_info(v));
        rc = 0;
    } else if ((v = json_object_get(m, "choice_message"))) {
        const char *t = channel_str(json_object_get(v, "text_message"), "text");
        rc = t && *t ? set_text(o, t, e) : set_rendered(o, m, e);
        if (rc == 0)
            rc = rcs_suggestions(o, json_object_get(v, "choices"), RCS_SUGGESTIONS_MAX, "a message",
                                 e);
    } else if ((v = json_object_get(m, "card_message"))) {
        json_t *cc = card_content(v, 0, e);
        if (cc) {
            json_object_set_new(o, "richCard", standalone(cc));
            rc = 0;
        }
    } else if ((v = json_object_get(m, "carousel_message"))) {
        rc = build_carousel(o, v, e);
    } else if ((v = json_object_get(m, "location_message"))) {
        rc = build_location(o, v, e);
    } else if (json_object_get(m, "contact_info_message")) {
        rc = set_rendered(o, m, e); /* RBM has no contact card */
    } else if ((v = json_object_get(m, "list_message"))) {
        rc = build_list(o, v, m, e);
    } else if (json_object_get(m, "template_message")) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "RCS cannot carry template_message (RBM has no message templates)");
    } else {
        err_set(e, ERR_INVALID_ARGUMENT, "RCS: the message has no type Parley knows");
    }
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The AgentMessage body {"contentMessage": ...}. explicit_channel_message.RCS may hold
 * that body or a bare contentMessage as a JSON string. */
static json_t *rcs_body(json_t *m, err_t *e)
{
    const char *raw = channel_str(json_object_get(m, "explicit_channel_message"), "RCS");
    if (raw) {
        json_t *x = json_loads(raw, 0, NULL);
        if (!json_is_object(x) || !json_object_size(x)) {
            json_decref(x);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "explicit_channel_message.RCS must be a JSON object (an AgentMessage "
                           "or its contentMessage)"),
                   NULL;
        }
        if (json_is_object(json_object_get(x, "contentMessage"))) return x;
        return json_pack("{s:o}", "contentMessage", x);
    }
    json_t *c = rcs_content(m, e);
    return c ? json_pack("{s:o}", "contentMessage", c) : NULL;
}

/* ---- outbound ---- */

/* E.164 with "+" (RBM's form); Parley identities may come without it. */
static int msisdn(const char *in, char out[20], err_t *e)
{
    const char *d = in && *in == '+' ? in + 1 : in;
    size_t n = d ? strlen(d) : 0;
    if (n < 3 || n > 15 || d[0] == '0')
        return err_set(e, ERR_INVALID_ARGUMENT, "RCS needs an E.164 phone number as recipient");
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)d[i]))
            return err_set(e, ERR_INVALID_ARGUMENT, "RCS needs an E.164 phone number as recipient");
    snprintf(out, 20, "+%s", d);
    return 0;
}

static int rcs_send(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *agent, *token;
    char phone[20];
    if (rcs_creds(in->credential, &agent, &token, e) < 0 || msisdn(in->recipient, phone, e) < 0)
        return -1;
    if (!in->message_id || !*in->message_id)
        return err_set(e, ERR_INVALID_ARGUMENT, "RCS needs a message id (RBM messageId)");
    json_t *body = rcs_body(in->app_message, e);
    if (!body) return -1;
    buf_t u;
    buf_init(&u);
    put_base(&u, in->base_url);
    buf_printf(&u, "/phones/%s/agentMessages?messageId=", phone);
    qenc(&u, in->message_id);
    buf_puts(&u, "&agentId=");
    qenc(&u, agent);
    char *s = channel_dump(body);
    channel_http_set(out, "POST", u.data, "application/json", s);
    channel_http_header(out, "Authorization: Bearer %s", token);
    free(s);
    buf_free(&u);
    json_decref(body);
    return 0;
}

static void rcs_send_result(long status, const char *body, size_t len, channel_result_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *err = json_object_get(j, "error");
    const char *msg = channel_str(err, "message");
    char desc[200];
    if (status) {
        snprintf(desc, sizeof desc, "RBM answered HTTP %ld%s%s", status, msg ? ": " : "",
                 msg ? msg : "");
    } else {
        snprintf(desc, sizeof desc, "no answer from RBM");
    }
    if (status >= 200 && status < 300) {
        /* name = "phones/{E.164}/agentMessages/{messageId}": the id receipts will carry */
        const char *name = channel_str(j, "name"), *slash = name ? strrchr(name, '/') : NULL;
        out->outcome = CHANNEL_SENT;
        if (slash) utf8_copy(out->provider_id, sizeof out->provider_id, slash + 1);
    } else if (status == 409) {
        out->outcome = CHANNEL_SENT; /* ALREADY_EXISTS: this messageId was accepted before */
    } else if (status == 0 || status >= 500) {
        channel_result_set(out, CHANNEL_RETRY, "CHANNEL_FAILURE", desc);
    } else if (status == 429) {
        channel_result_set(out, CHANNEL_RETRY, "RATE_LIMITED", desc);
    } else if (status == 404) {
        channel_result_set(out, CHANNEL_FAILED, "RECIPIENT_NOT_REACHABLE",
                           desc); /* not RCS-capable */
    } else if (status == 401 || status == 403) {
        channel_result_set(out, CHANNEL_FAILED, "CHANNEL_BAD_CONFIGURATION", desc);
    } else if (status == 400) {
        channel_result_set(out, CHANNEL_FAILED, "BAD_REQUEST", desc);
    } else {
        channel_result_set(out, CHANNEL_FAILED, "CHANNEL_FAILURE", desc);
    }
    json_decref(j);
}

/* There is no cheap RBM "who am I": look up the capabilities of a number no one has.
 * Only 401/403 say the token or agent is wrong; any other answer proves both work. */
static int rcs_check(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *agent, *token;
    if (rcs_creds(in->credential, &agent, &token, e) < 0) return -1;
    uint8_t r[16];
    sec_random(r, sizeof r);
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40); /* UUID version 4 */
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    char uuid[37];
    snprintf(uuid, sizeof uuid,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    buf_t u;
    buf_init(&u);
    put_base(&u, in->base_url);
    buf_printf(&u, "/phones/%s/capabilities?requestId=%s&agentId=", RCS_CHECK_NUMBER, uuid);
    qenc(&u, agent);
    channel_http_set(out, "GET", u.data, NULL, NULL);
    channel_http_header(out, "Authorization: Bearer %s", token);
    buf_free(&u);
    return 0;
}

static int rcs_check_result(long status, const char *body, size_t len, char *desc, size_t cap)
{
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = channel_str(json_object_get(j, "error"), "message");
    int rc = -1;
    if (cap) desc[0] = '\0';
    if (status == 0)
        snprintf(desc, cap, "no answer from RBM");
    else if (status == 401 || status == 403)
        snprintf(desc, cap, "RBM rejected the agent or token (HTTP %ld): %s", status,
                 msg ? msg : "no details");
    else if (status >= 500)
        snprintf(desc, cap, "RBM is unavailable (HTTP %ld)", status);
    else
        rc = 0; /* 200, 404 (not RCS-capable), 429...: the agent and token were accepted */
    json_decref(j);
    return rc;
}

static json_t *rcs_transcode(json_t *app_message, err_t *e)
{
    return rcs_body(app_message, e);
}

/* ---- inbound ---- */

/* base64(HMAC-SHA512(data, key)) == sig, in constant time. */
static int sig_ok(const char *key, const void *data, size_t len, const char *sig)
{
    uint8_t mac[crypto_auth_hmacsha512_BYTES];
    crypto_auth_hmacsha512_state st;
    crypto_auth_hmacsha512_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha512_update(&st, data, len);
    crypto_auth_hmacsha512_final(&st, mac);
    char want[128];
    int n = sec_b64_encode(mac, sizeof mac, want, sizeof want);
    return n > 0 && strlen(sig) == (size_t)n && sec_equal(want, sig, (size_t)n);
}

/* The decoded message.data of a Pub/Sub push envelope: malloc'd, or NULL. */
static char *envelope_data(json_t *j, size_t *len)
{
    const char *b64 = channel_str(json_object_get(j, "message"), "data");
    if (!b64) return NULL;
    size_t cap = strlen(b64) / 4 * 3 + 4;
    char *out = malloc(cap);
    if (!out) return NULL;
    int n = sec_b64_decode(b64, out, cap - 1);
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *len = (size_t)n;
    return out;
}

static int is_handshake(json_t *j)
{
    return json_is_string(json_object_get(j, "clientToken")) &&
           json_is_string(json_object_get(j, "secret"));
}

static int rcs_verify(const channel_inbound_t *in, json_t *credential, const char *callback_secret,
                      err_t *e)
{
    (void)credential;
    if (!callback_secret || !*callback_secret) return 0; /* no clientToken configured */
    json_t *j = in->body && in->body_len ? json_loadb(in->body, in->body_len, 0, NULL) : NULL;
    int ok = 0;
    if (is_handshake(j)) {
        /* the webhook registration check: {"clientToken":..,"secret":..}, unsigned */
        const char *t = channel_str(j, "clientToken");
        ok = strlen(t) == strlen(callback_secret) && sec_equal(t, callback_secret, strlen(t));
    } else {
        const char *sig = in->header ? in->header(in->cls, "X-Goog-Signature") : NULL;
        if (!sig) {
            json_decref(j);
            return err_set(e, ERR_UNAUTHENTICATED, "missing X-Goog-Signature header");
        }
        /* RBM signs the decoded message.data of its envelope; a signature over the raw body
         * is accepted too (plain-JSON deliveries, relays). */
        size_t n = 0;
        char *data = envelope_data(j, &n);
        ok = (data && sig_ok(callback_secret, data, n, sig)) ||
             sig_ok(callback_secret, in->body ? in->body : "", in->body_len, sig);
        free(data);
    }
    json_decref(j);
    return ok ? 0 : err_set(e, ERR_UNAUTHENTICATED, "X-Goog-Signature does not match");
}

/* RBM checks a new webhook by POSTing {"clientToken","secret"} and wants the secret back
 * as the plain-text body. */
static int rcs_handshake(const channel_inbound_t *in, json_t *credential,
                         const char *callback_secret, channel_reply_t *reply, err_t *e)
{
    (void)credential;
    json_t *j = in->body && in->body_len ? json_loadb(in->body, in->body_len, 0, NULL) : NULL;
    int rc = -1;
    if (!is_handshake(j)) {
        rc = 1; /* an ordinary event: the caller verifies and parses it */
    } else {
        const char *t = channel_str(j, "clientToken"), *secret = channel_str(j, "secret");
        if (callback_secret && *callback_secret &&
            !(strlen(t) == strlen(callback_secret) && sec_equal(t, callback_secret, strlen(t))))
            err_set(e, ERR_UNAUTHENTICATED, "RBM clientToken does not match");
        else if (strlen(secret) >= sizeof reply->body)
            err_set(e, ERR_INVALID_ARGUMENT, "RBM verification secret is too long");
        else {
            reply->status = 200;
            utf8_copy(reply->body, sizeof reply->body, secret);
            rc = 0;
        }
    }
    json_decref(j);
    return rc;
}

static int bad(err_t *e, const char *what)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "malformed RBM event: %s", what);
}

/* "+14155550100" -> "14155550100": Parley's phone identities carry no "+". */
static void identity_of(const char *phone, char *out, size_t cap)
{
    utf8_copy(out, cap, phone[0] == '+' ? phone + 1 : phone);
}

static json_t *rcs_user_content(json_t *ev, err_t *e)
{
    json_t *v;
    if ((v = json_object_get(ev, "text"))) {
        if (!json_is_string(v)) return bad(e, "text must be a string"), NULL;
        return json_pack("{s:{s:O}}", "text_message", "text", v);
    }
    if ((v = json_object_get(ev, "userFile"))) {
        json_t *p = json_object_get(v, "payload"), *th = json_object_get(v, "thumbnail");
        const char *uri = channel_str(p, "fileUri");
        if (!uri || !*uri) return bad(e, "userFile.payload.fileUri is required"), NULL;
        json_t *mm = json_pack("{s:s}", "url", uri);
        if (channel_str(th, "fileUri"))
            json_object_set_new(mm, "thumbnail_url", json_string(channel_str(th, "fileUri")));
        if (channel_str(p, "fileName"))
            json_object_set_new(mm, "filename_override", json_string(channel_str(p, "fileName")));
        return json_pack("{s:o}", "media_message", mm);
    }
    if ((v = json_object_get(ev, "location"))) {
        json_t *lat = json_object_get(v, "latitude"), *lon = json_object_get(v, "longitude");
        if (!json_is_number(lat) || !json_is_number(lon))
            return bad(e, "location needs numeric latitude and longitude"), NULL;
        return json_pack("{s:{s:{s:O,s:O}}}", "location_message", "coordinates", "latitude", lat,
                         "longitude", lon);
    }
    if ((v = json_object_get(ev, "suggestionResponse"))) {
        const char *pb = channel_str(v, "postbackData");
        if (!pb) return bad(e, "suggestionResponse.postbackData is required"), NULL;
        /* RBM does not say which agent message the chip belonged to: message_id is left
         * empty for the receive path to resolve (see docs/channels.md). */
        return json_pack("{s:{s:s,s:s}}", "choice_response_message", "message_id", "",
                         "postback_data", pb);
    }
    char *raw = channel_dump(ev);
    json_t *r = json_pack("{s:{s:s,s:{s:s,s:s}}}", "fallback_message", "raw_message", raw, "reason",
                          "code", "UNSUPPORTED_OPERATION", "description",
                          "RBM message kind not supported by Parley");
    free(raw);
    return r;
}

static int rcs_event(json_t *ev, channel_events_t *out, err_t *e)
{
    if (!json_is_object(ev)) return bad(e, "the event must be an object");
    json_t *st = json_object_get(ev, "sendTime"), *type = json_object_get(ev, "eventType");
    int64_t ms = 0;
    if (st && (!json_is_string(st) || clock_parse_rfc3339(json_string_value(st), &ms) < 0))
        return bad(e, "sendTime must be an RFC 3339 time");
    if (type && !json_is_string(type)) return bad(e, "eventType must be a string");
    json_t *pv = json_object_get(ev, "senderPhoneNumber");
    if (!pv) pv = json_object_get(ev, "phoneNumber"); /* server events */
    if (pv && !json_is_string(pv)) return bad(e, "senderPhoneNumber must be a string");
    const char *phone = json_string_value(pv);
    const char *t = json_string_value(type), *mid = channel_str(ev, "messageId");
    if (t) {
        const char *status = !strcmp(t, "DELIVERED")                ? "DELIVERED"
                             : !strcmp(t, "READ")                   ? "READ"
                             : !strcmp(t, "TTL_EXPIRATION_REVOKED") ? "FAILED"
                                                                    : NULL;
        if (!status) return 0; /* IS_TYPING, SUBSCRIBE, UNSUBSCRIBE, ...: nothing to store */
        if (!phone || !*phone) return bad(e, "senderPhoneNumber is required");
        if (!mid || !*mid) return bad(e, "messageId is required");
        channel_event_t *r = channel_events_add(out);
        r->kind = CHANNEL_EVENT_RECEIPT;
        identity_of(phone, r->identity, sizeof r->identity);
        utf8_copy(r->provider_id, sizeof r->provider_id, mid);
        snprintf(r->status, sizeof r->status, "%s", status);
        if (status[0] == 'F') snprintf(r->reason_code, sizeof r->reason_code, "MESSAGE_EXPIRED");
        r->time_ms = ms;
        return 0;
    }
    if (!phone) return 0; /* agent/platform notifications: nothing Parley handles */
    if (!*phone) return bad(e, "senderPhoneNumber is empty");
    if (!mid) mid = channel_str(ev, "eventId");
    if (!mid || !*mid) return bad(e, "messageId is required");
    json_t *cm = rcs_user_content(ev, e);
    if (!cm) return -1;
    channel_event_t *m = channel_events_add(out);
    m->kind = CHANNEL_EVENT_MESSAGE;
    m->contact_message = cm;
    identity_of(phone, m->identity, sizeof m->identity);
    utf8_copy(m->provider_id, sizeof m->provider_id, mid);
    m->time_ms = ms;
    return 0;
}

static int rcs_parse(const channel_inbound_t *in, channel_events_t *out, err_t *e)
{
    json_t *j = jsonx_parse(in->body, in->body_len, e);
    if (!j) return -1;
    int rc = 0;
    json_t *env = json_object_get(j, "message");
    if (!json_is_object(j)) {
        rc = bad(e, "the body must be an object");
    } else if (is_handshake(j)) {
        rc = 0; /* webhook verification: handled by the handshake, no events */
    } else if (env) {
        /* Pub/Sub push: {"message":{"data":base64(event JSON),...},"subscription":..} */
        size_t n = 0;
        char *data = json_is_object(env) ? envelope_data(j, &n) : NULL;
        if (!data) {
            rc = bad(e, "message.data must be base64 of a JSON event");
        } else {
            json_t *ev = jsonx_parse(data, n, e);
            rc = ev ? rcs_event(ev, out, e) : -1;
            if (!ev)
                err_set(e, ERR_INVALID_ARGUMENT, "malformed RBM event: message.data is not JSON");
            json_decref(ev);
            free(data);
        }
    } else {
        rc = rcs_event(j, out, e);
    }
    json_decref(j);
    return rc;
}

const channel_t channel_rcs = {
    .channel = CONVO_RCS,
    .name = "RCS",
    .credential_key = "static_bearer",
    .default_base_url = "https://rcsbusinessmessaging.googleapis.com/v1",
    .send = rcs_send,
    .send_result = rcs_send_result,
    .verify = rcs_verify,
    .parse = rcs_parse,
    .handshake = rcs_handshake,
    .handshake_on_post = 1,
    .check = rcs_check,
    .check_result = rcs_check_result,
    .transcode = rcs_transcode,
};
