/* test_channel_others.c: the TELEGRAM, VIBERBM and RCS adapters (channels/telegram.c,
 * viber.c, rcs.c) byte for byte: the request every AppMessage type becomes, length limits,
 * the outcome of every kind of provider answer, webhook verification and parsing of every
 * inbound kind with realistic payloads, malformed payloads, and the credential check.
 *
 * JSON in this file is written with single quotes for readability; q() turns them into
 * double quotes (a backslash-quote, written "\\'", becomes an escaped quote). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/sec.h"
#include "channels/channel.h"
#include "convo/messages.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const channel_t channel_telegram, channel_viber, channel_rcs;
int channel_telegram_set_webhook(const channel_send_t *in, const char *url, const char *secret,
                                 channel_http_t *out, err_t *e);

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" to contain \"%s\"", (hay), (needle));                        \
    } while (0)

/* ---- helpers ---- */

/* Single-quoted JSON -> JSON (malloc'd). */
static char *q(const char *s)
{
    char *r = strdup(s);
    for (char *p = r; *p; p++)
        if (*p == '\'') *p = '"';
    return r;
}

static json_t *J(const char *single_quoted)
{
    char *s = q(single_quoted);
    json_error_t je;
    json_t *v = json_loads(s, 0, &je);
    if (!v) fail_msg("bad test JSON (%s): %s", je.text, s);
    free(s);
    return v;
}

static void assert_json(json_t *v, const char *want_single_quoted)
{
    char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    char *want = q(want_single_quoted);
    if (strcmp(got, want)) fail_msg("JSON differs\n got: %s\nwant: %s", got, want);
    free(got);
    free(want);
}

static char *repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

static const char *header(const channel_http_t *h, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < CHANNEL_MAX_HEADERS && h->headers[i]; i++)
        if (!strncasecmp(h->headers[i], name, n) && h->headers[i][n] == ':')
            return h->headers[i] + n + 2;
    return NULL;
}

static const char *TG_CRED = "{'token':'123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11'}";
static const char *TG_URL =
    "https://api.telegram.org/bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/";
static const char *VB_CRED = "{'claimed_identity':'Parley "
                             "Shop','token':'445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9'}";
static const char *VB_TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9";
static const char *RCS_CRED =
    "{'claimed_identity':'parley_demo_agent','token':'ya29.a0AfH6SMBx-token'}";
static const char *MSG_ID = "01HZY8J4K3M2N1P0Q9R8S7T6V5";

typedef struct {
    const channel_t *ch;
    const char *cred;
    const char *recipient;
    const char *props;      /* single-quoted JSON or NULL */
    const char *base;       /* NULL: the adapter's default */
    const char *message_id; /* NULL: MSG_ID */
} ctx_t;

static const ctx_t TG = {&channel_telegram, NULL, "123456789", NULL, NULL, NULL};
static const ctx_t VB = {&channel_viber, NULL, "01234567890A=", NULL, NULL, NULL};
static const ctx_t RC = {&channel_rcs, NULL, "+14155550100", NULL, NULL, NULL};

static const char *default_cred(const channel_t *ch)
{
    return ch == &channel_telegram ? TG_CRED : ch == &channel_viber ? VB_CRED : RCS_CRED;
}

/* Run send for msg: 0 with out filled, or -1 with e. The message must be a valid AppMessage. */
static int do_send(const ctx_t *c, const char *msg, channel_http_t *out, err_t *e)
{
    json_t *m = J(msg), *cred = J(c->cred ? c->cred : default_cred(c->ch));
    json_t *props = c->props ? J(c->props) : NULL;
    err_t ve = {0};
    if (convo_message_check_app(m, "message", &ve) < 0)
        fail_msg("test message is not a valid AppMessage: %s", ve.message);
    channel_send_t in = {.base_url = c->base ? c->base : c->ch->default_base_url,
                         .credential = cred,
                         .recipient = c->recipient,
                         .app_message = m,
                         .channel_properties = props,
                         .message_id = c->message_id ? c->message_id : MSG_ID};
    memset(out, 0, sizeof *out);
    int rc = c->ch->send(&in, out, e);
    json_decref(m);
    json_decref(cred);
    json_decref(props);
    return rc;
}

/* send must build exactly this request: POST url (appended to want_url_prefix) with body. */
static void expect_send(const ctx_t *c, const char *msg, const char *want_url,
                        const char *want_body)
{
    channel_http_t h;
    err_t e = {0};
    if (do_send(c, msg, &h, &e) < 0) fail_msg("send failed: %s", e.message);
    char *body = q(want_body);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.url, want_url);
    if (strcmp(h.body, body)) fail_msg("body differs\n got: %s\nwant: %s", h.body, body);
    assert_int_equal(h.body_len, strlen(body));
    assert_string_equal(header(&h, "Content-Type"), "application/json");
    free(body);
    channel_http_free(&h);
}

static void expect_send_error(const ctx_t *c, const char *msg, err_code_t code, const char *needle)
{
    channel_http_t h;
    err_t e = {0};
    if (do_send(c, msg, &h, &e) == 0) fail_msg("send of %s should have failed", msg);
    assert_int_equal(e.code, code);
    assert_contains(e.message, needle);
    assert_null(h.url);
    assert_null(h.body);
    channel_http_free(&h);
}

/* transcode must give exactly want (single-quoted). */
static void expect_transcode(const channel_t *ch, const char *msg, const char *want)
{
    json_t *m = J(msg);
    err_t e = {0};
    json_t *t = ch->transcode(m, &e);
    if (!t) fail_msg("transcode failed: %s", e.message);
    assert_json(t, want);
    json_decref(t);
    json_decref(m);
}

static channel_result_t result(const channel_t *ch, long status, const char *body_single_quoted)
{
    channel_result_t r;
    memset(&r, 0x5a, sizeof r); /* send_result must fill every field */
    char *b = body_single_quoted ? q(body_single_quoted) : NULL;
    ch->send_result(status, b, b ? strlen(b) : 0, &r);
    free(b);
    return r;
}

/* Inbound requests: headers as a NULL-terminated list of name/value pairs. */
typedef struct {
    const char *name, *value;
} hdr_t;

static const char *hdr_get(void *cls, const char *name)
{
    for (hdr_t *h = cls; h && h->name; h++)
        if (!strcasecmp(h->name, name)) return h->value;
    return NULL;
}

static const char *no_query(void *cls, const char *name)
{
    (void)cls;
    (void)name;
    return NULL;
}

static channel_inbound_t inbound(const char *body, hdr_t *hdrs)
{
    channel_inbound_t in = {.method = "POST",
                            .body = body,
                            .body_len = strlen(body),
                            .header = hdr_get,
                            .query = no_query,
                            .cls = hdrs};
    return in;
}

/* Parse a single-quoted body; it must give n events. */
static channel_events_t parse_ok(const channel_t *ch, const char *body_single_quoted, size_t n)
{
    char *b = q(body_single_quoted);
    channel_inbound_t in = inbound(b, NULL);
    channel_events_t ev = {0};
    err_t e = {0};
    if (ch->parse(&in, &ev, &e) < 0) fail_msg("parse failed: %s\nbody: %s", e.message, b);
    if (ev.n != n) fail_msg("parse gave %zu events, want %zu\nbody: %s", ev.n, n, b);
    free(b);
    return ev;
}

/* A raw (not quote-converted) body that must be refused as malformed, leaving no events. */
static void parse_bad_raw(const channel_t *ch, const char *body, size_t len, const char *needle)
{
    channel_inbound_t in = inbound("", NULL);
    in.body = body;
    in.body_len = len;
    channel_events_t ev = {0};
    err_t e = {0};
    if (ch->parse(&in, &ev, &e) == 0) fail_msg("parse of %.*s should have failed", (int)len, body);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    if (needle) assert_contains(e.message, needle);
    assert_int_equal(ev.n, 0);
    channel_events_free(&ev);
}

static void parse_bad(const channel_t *ch, const char *body_single_quoted, const char *needle)
{
    char *b = q(body_single_quoted);
    parse_bad_raw(ch, b, strlen(b), needle);
    free(b);
}

/* An inbound message event: identity, provider id, content and (when valid for Sinch's
 * validation: not every adapter URL is http) a ContactMessage check. */
static void expect_message(const channel_event_t *ev, const char *identity, const char *provider_id,
                           const char *content, int validate)
{
    assert_int_equal(ev->kind, CHANNEL_EVENT_MESSAGE);
    assert_string_equal(ev->identity, identity);
    assert_string_equal(ev->provider_id, provider_id);
    assert_json(ev->contact_message, content);
    if (validate) {
        err_t e = {0};
        if (convo_message_check_contact(ev->contact_message, "message", &e) < 0)
            fail_msg("parsed ContactMessage is invalid: %s", e.message);
    }
}

static void expect_receipt(const channel_event_t *ev, const char *identity, const char *provider_id,
                           const char *status, const char *reason)
{
    assert_int_equal(ev->kind, CHANNEL_EVENT_RECEIPT);
    assert_string_equal(ev->identity, identity);
    assert_string_equal(ev->provider_id, provider_id);
    assert_string_equal(ev->status, status);
    assert_string_equal(ev->reason_code, reason);
    assert_null(ev->contact_message);
}

static int verify(const channel_t *ch, const char *body, hdr_t *hdrs, const char *cred,
                  const char *secret, err_t *e)
{
    json_t *c = J(cred);
    channel_inbound_t in = inbound(body, hdrs);
    int rc = ch->verify(&in, c, secret, e);
    json_decref(c);
    return rc;
}

static int check_result(const channel_t *ch, long status, const char *body_single_quoted,
                        char *desc, size_t cap)
{
    char *b = body_single_quoted ? q(body_single_quoted) : NULL;
    int rc = ch->check_result(status, b, b ? strlen(b) : 0, desc, cap);
    free(b);
    return rc;
}

/* ======================================================================================
 * TELEGRAM
 * ====================================================================================== */

static char *tg_url(const char *method)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s%s", TG_URL, method);
    return buf;
}

static void test_tg_descriptor(void **state)
{
    (void)state;
    assert_int_equal(channel_telegram.channel, CONVO_TELEGRAM);
    assert_string_equal(channel_telegram.name, "TELEGRAM");
    assert_string_equal(channel_telegram.credential_key, "telegram_credentials");
    assert_string_equal(channel_telegram.default_base_url, "https://api.telegram.org");
    assert_ptr_equal(channel_get(CONVO_TELEGRAM), &channel_telegram);
    assert_null(channel_telegram.handshake);
}

static void test_tg_send_text(void **state)
{
    (void)state;
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(do_send(&TG, "{'text_message':{'text':'Hello https://parley.dev'}}", &h, &e),
                     0);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.url, tg_url("sendMessage"));
    assert_string_equal(h.body,
                        "{\"chat_id\":\"123456789\",\"text\":\"Hello https://parley.dev\"}");
    assert_string_equal(header(&h, "Content-Type"), "application/json");
    assert_null(h.headers[1]); /* the token travels in the URL, nothing else */
    channel_http_free(&h);

    ctx_t c = TG;
    c.props = "{'TELEGRAM_DISABLE_LINK_PREVIEW':'true'}";
    expect_send(&c, "{'text_message':{'text':'Hello https://parley.dev'}}", tg_url("sendMessage"),
                "{'chat_id':'123456789','text':'Hello https://parley.dev',"
                "'link_preview_options':{'is_disabled':true}}");
    c.props = "{'TELEGRAM_DISABLE_LINK_PREVIEW':'false'}";
    expect_send(&c, "{'text_message':{'text':'Hi'}}", tg_url("sendMessage"),
                "{'chat_id':'123456789','text':'Hi'}");

    /* the base URL is the caller's (tests point it at a fake) */
    c = TG;
    c.base = "http://127.0.0.1:8081/tg/";
    expect_send(&c, "{'text_message':{'text':'Hi'}}",
                "http://127.0.0.1:8081/tg/bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/sendMessage",
                "{'chat_id':'123456789','text':'Hi'}");
    /* the credential may come nested under its key */
    c = TG;
    c.cred = "{'telegram_credentials':{'token':'42:XYZ'}}";
    expect_send(&c, "{'text_message':{'text':'Hi'}}",
                "https://api.telegram.org/bot42:XYZ/sendMessage",
                "{'chat_id':'123456789','text':'Hi'}");
}

static void test_tg_send_media(void **state)
{
    (void)state;
    expect_send(&TG, "{'media_message':{'url':'https://cdn.example.com/cat.JPG?x=1'}}",
                tg_url("sendPhoto"),
                "{'chat_id':'123456789','photo':'https://cdn.example.com/cat.JPG?x=1'}");
    expect_send(&TG, "{'media_message':{'url':'https://cdn.example.com/p.png#top'}}",
                tg_url("sendPhoto"),
                "{'chat_id':'123456789','photo':'https://cdn.example.com/p.png#top'}");
    expect_send(&TG, "{'media_message':{'url':'https://cdn.example.com/clip.mp4'}}",
                tg_url("sendVideo"),
                "{'chat_id':'123456789','video':'https://cdn.example.com/clip.mp4'}");
    expect_send(&TG, "{'media_message':{'url':'https://cdn.example.com/song.mp3'}}",
                tg_url("sendAudio"),
                "{'chat_id':'123456789','audio':'https://cdn.example.com/song.mp3'}");
    expect_send(&TG, "{'media_message':{'url':'https://cdn.example.com/manual.pdf'}}",
                tg_url("sendDocument"),
                "{'chat_id':'123456789','document':'https://cdn.example.com/manual.pdf'}");
    expect_send(&TG, "{'media_message':{'url':'https://cdn.example.com/files.v2/download'}}",
                tg_url("sendDocument"),
                "{'chat_id':'123456789','document':'https://cdn.example.com/files.v2/download'}");
}

static void test_tg_send_choice(void **state)
{
    (void)state;
    expect_send(
        &TG,
        "{'choice_message':{'text_message':{'text':'Pick one'},'choices':["
        "{'text_message':{'text':'Yes'},'postback_data':'YES'},{'text_message':{'text':'No'}},"
        "{'url_message':{'title':'Docs','url':'https://parley.dev/docs'}},"
        "{'call_message':{'title':'Call us','phone_number':'+46701234567'}},"
        "{'location_message':{'title':'HQ','coordinates':{'latitude':59.3293,'longitude':18.0686}}}"
        ","
        "{'calendar_message':{'title':'Add','event_start':'2026-01-10T10:00:00Z',"
        "'event_end':'2026-01-10T11:00:00Z','event_title':'Demo','fallback_url':'https://"
        "parley.dev/cal'}},"
        "{'share_location_message':{'title':'Share','fallback_url':'https://parley.dev/loc'}}]}}",
        tg_url("sendMessage"),
        "{'chat_id':'123456789','text':'Pick one\\nCall us: "
        "+46701234567','reply_markup':{'inline_keyboard':"
        "[[{'text':'Yes','callback_data':'YES'}],[{'text':'No','callback_data':'No'}],[{'text':"
        "'Docs','url':'https://parley.dev/docs'}],[{'text':'HQ','url':'https://maps.google.com/"
        "?q=59.3293,"
        "18.0686'}],[{'text':'Add','url':'https://parley.dev/cal'}],[{'text':'Share','url':"
        "'https://parley.dev/loc'}]]}}");

    /* no text: the keyboard hangs on the plain-text rendering */
    expect_send(&TG,
                "{'choice_message':{'choices':[{'text_message':{'text':'Yes'}},{'text_message':{'"
                "text':'No'}}]}}",
                tg_url("sendMessage"),
                "{'chat_id':'123456789','text':'1. Yes\\n2. No','reply_markup':{'inline_keyboard':"
                "[[{'text':'Yes','callback_data':'Yes'}],[{'text':'No','callback_data':'No'}]]}}");
}

static void test_tg_callback_data_limit(void **state)
{
    (void)state;
    /* a 64-byte postback fits, 65 bytes does not */
    char *pb64 = repeat("p", 64);
    char buf[512];
    snprintf(
        buf, sizeof buf,
        "{'choice_message':{'text_message':{'text':'Go'},'choices':[{'text_message':{'text':'A'},"
        "'postback_data':'%s'}]}}",
        pb64);
    char want[512];
    snprintf(want, sizeof want,
             "{'chat_id':'123456789','text':'Go','reply_markup':{'inline_keyboard':[[{'text':'A',"
             "'callback_data':'%s'}]]}}",
             pb64);
    expect_send(&TG, buf, tg_url("sendMessage"), want);
    snprintf(
        buf, sizeof buf,
        "{'choice_message':{'text_message':{'text':'Go'},'choices':[{'text_message':{'text':'A'},"
        "'postback_data':'%sp'}]}}",
        pb64);
    expect_send_error(&TG, buf, ERR_INVALID_ARGUMENT, "limited to 64 bytes");
    free(pb64);

    /* a long title used as data is cut to 64 bytes at a character boundary */
    char *title = repeat("\xe2\x82\xac", 30); /* 90 bytes */
    snprintf(buf, sizeof buf,
             "{'choice_message':{'text_message':{'text':'Go'},'choices':[{'text_message':{'text':'%"
             "s'}}]}}",
             title);
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(do_send(&TG, buf, &h, &e), 0);
    json_t *b = json_loads(h.body, 0, NULL);
    const char *data = json_string_value(json_object_get(
        json_array_get(
            json_array_get(json_object_get(json_object_get(b, "reply_markup"), "inline_keyboard"),
                           0),
            0),
        "callback_data"));
    assert_int_equal(strlen(data), 63); /* 21 whole characters */
    assert_int_equal(strncmp(data, title, 63), 0);
    json_decref(b);
    channel_http_free(&h);
    free(title);
}

static void test_tg_send_card(void **state)
{
    (void)state;
    expect_send(
        &TG,
        "{'card_message':{'title':'Sneakers','description':'Size 42','media_message':"
        "{'url':'https://cdn.example.com/s.png'},'choices':[{'text_message':{'text':'Buy'},"
        "'postback_data':'buy-42'},{'call_message':{'title':'Shop','phone_number':'+4681234'}}]}}",
        tg_url("sendPhoto"),
        "{'chat_id':'123456789','photo':'https://cdn.example.com/s.png','caption':"
        "'Sneakers\\nSize 42\\nShop: +4681234','reply_markup':{'inline_keyboard':"
        "[[{'text':'Buy','callback_data':'buy-42'}]]}}");
    /* a video card goes with sendVideo */
    expect_send(
        &TG,
        "{'card_message':{'title':'Trailer','media_message':{'url':'https://cdn.example.com/"
        "t.mp4'}}}",
        tg_url("sendVideo"),
        "{'chat_id':'123456789','video':'https://cdn.example.com/t.mp4','caption':'Trailer'}");
    /* no media: a text message with the keyboard */
    expect_send(&TG,
                "{'card_message':{'title':'Plan','description':'Pro','choices':[{'url_message':"
                "{'title':'Buy','url':'https://parley.dev/buy'}}]}}",
                tg_url("sendMessage"),
                "{'chat_id':'123456789','text':'Plan\\nPro','reply_markup':{'inline_keyboard':"
                "[[{'text':'Buy','url':'https://parley.dev/buy'}]]}}");
    /* captions are limited to 1024 characters */
    char *d = repeat("d", 1030), buf[1300];
    snprintf(buf, sizeof buf,
             "{'card_message':{'description':'%s','media_message':{'url':'https://cdn.example.com/"
             "s.png'}}}",
             d);
    free(d);
    expect_send_error(&TG, buf, ERR_INVALID_ARGUMENT,
                      "caption is limited to 1024 characters, got 1030");
}

static void test_tg_send_carousel(void **state)
{
    (void)state;
    expect_send(
        &TG,
        "{'carousel_message':{'cards':[{'title':'A','description':'first','media_message':"
        "{'url':'https://cdn.example.com/a.jpg'},'choices':[{'text_message':{'text':'Take A'}}]},"
        "{'title':'B','choices':[{'url_message':{'title':'More','url':'https://example.com/b'}}]}],"
        "'choices':[{'text_message':{'text':'None'},'postback_data':'none'}]}}",
        tg_url("sendMessage"),
        "{'chat_id':'123456789','text':'A\\nfirst\\nhttps://cdn.example.com/a.jpg\\n\\nB',"
        "'reply_markup':{'inline_keyboard':[[{'text':'Take A','callback_data':'Take A'}],"
        "[{'text':'More','url':'https://example.com/"
        "b'}],[{'text':'None','callback_data':'none'}]]}}");
}

static void test_tg_send_location_contact(void **state)
{
    (void)state;
    expect_send(&TG,
                "{'location_message':{'title':'HQ','label':'Main St 1','coordinates':"
                "{'latitude':59.3293,'longitude':18.0686}}}",
                tg_url("sendLocation"),
                "{'chat_id':'123456789','latitude':59.3293,'longitude':18.0686}");
    expect_send(
        &TG,
        "{'location_message':{'title':'Null island','coordinates':{'latitude':0,'longitude':-12}}}",
        tg_url("sendLocation"), "{'chat_id':'123456789','latitude':0.0,'longitude':-12.0}");
    /* name and one number: no vCard */
    expect_send(
        &TG,
        "{'contact_info_message':{'name':{'full_name':'Ada Lovelace'},'phone_numbers':"
        "[{'phone_number':'+441234567890'}]}}",
        tg_url("sendContact"),
        "{'chat_id':'123456789','phone_number':'+441234567890','first_name':'Ada Lovelace'}");
    /* more than that: a vCard carries the rest */
    expect_send(
        &TG,
        "{'contact_info_message':{'name':{'full_name':'Ada Lovelace','first_name':'Ada',"
        "'last_name':'Lovelace'},'phone_numbers':[{'phone_number':'+441234567890'},"
        "{'phone_number':'+442222'}],'email_addresses':[{'email_address':'ada@example.com'}],"
        "'organization':{'company':'Engines; Ltd','title':'Analyst'}}}",
        tg_url("sendContact"),
        "{'chat_id':'123456789','phone_number':'+441234567890','first_name':'Ada','last_name':"
        "'Lovelace','vcard':'BEGIN:VCARD\\r\\nVERSION:3.0\\r\\nFN:Ada "
        "Lovelace\\r\\nN:Lovelace;Ada;;;"
        "\\r\\nTEL:+441234567890\\r\\nTEL:+442222\\r\\nEMAIL:ada@example.com\\r\\nORG:Engines\\\\; "
        "Ltd"
        "\\r\\nTITLE:Analyst\\r\\nEND:VCARD'}");
}

static void test_tg_send_list(void **state)
{
    (void)state;
    expect_send(
        &TG,
        "{'list_message':{'title':'Menu','description':'Pick a dish','sections':[{'title':'Mains',"
        "'items':[{'choice':{'title':'Pasta','postback_data':'p1'}},{'choice':{'title':'Soup'}}]}]}"
        "}",
        tg_url("sendMessage"),
        "{'chat_id':'123456789','text':'Menu\\nPick a dish','reply_markup':{'inline_keyboard':"
        "[[{'text':'Pasta','callback_data':'p1'}],[{'text':'Soup','callback_data':'Soup'}]]}}");
    /* products have no button form: plain text */
    expect_send(&TG,
                "{'list_message':{'title':'Shop','sections':[{'title':'Hats','items':[{'product':"
                "{'id':'hat-1','marketplace':'FACEBOOK'}},{'choice':{'title':'Other'}}]}]}}",
                tg_url("sendMessage"),
                "{'chat_id':'123456789','text':'Shop\\nHats\\n1. hat-1\\n2. Other'}");
}

static void test_tg_send_explicit(void **state)
{
    (void)state;
    expect_send(&TG,
                "{'text_message':{'text':'ignored'},'explicit_channel_message':{'TELEGRAM':"
                "'{\\'method\\':\\'sendDice\\',\\'chat_id\\':\\'999\\',\\'emoji\\':\\'🎲\\'}'}}",
                tg_url("sendDice"), "{'chat_id':'123456789','emoji':'🎲'}");
    expect_send_error(&TG,
                      "{'text_message':{'text':'x'},'explicit_channel_message':{'TELEGRAM':"
                      "'{\\'method\\':\\'../getMe\\'}'}}",
                      ERR_INVALID_ARGUMENT, "method");
    expect_send_error(
        &TG, "{'text_message':{'text':'x'},'explicit_channel_message':{'TELEGRAM':'not json'}}",
        ERR_INVALID_ARGUMENT, "JSON object");
    expect_send_error(&TG,
                      "{'text_message':{'text':'x'},'explicit_channel_message':{'TELEGRAM':"
                      "'{\\'method\\':\\'sendNothing\\'}'}}",
                      ERR_INVALID_ARGUMENT, "sendNothing");
}

static void test_tg_send_errors(void **state)
{
    (void)state;
    /* 4096 characters (not bytes) fit; 4097 do not */
    char *t = repeat("\xc3\xa4", 4096), buf[9000];
    snprintf(buf, sizeof buf, "{'text_message':{'text':'%s'}}", t);
    free(t);
    channel_http_t h;
    err_t e = {0};
    json_t *m = J(buf), *cred = J(TG_CRED);
    channel_send_t in = {.base_url = "https://api.telegram.org",
                         .credential = cred,
                         .recipient = "1",
                         .app_message = m};
    memset(&h, 0, sizeof h);
    assert_int_equal(channel_telegram.send(&in, &h, &e), 0);
    channel_http_free(&h);
    json_decref(m);
    /* a choice text plus call lines can pass 4096 */
    t = repeat("x", 4090);
    snprintf(buf, sizeof buf,
             "{'choice_message':{'text_message':{'text':'%s'},'choices':[{'call_message':{'title':'"
             "Call',"
             "'phone_number':'+46701234567'}}]}}",
             t);
    free(t);
    expect_send_error(&TG, buf, ERR_INVALID_ARGUMENT,
                      "message text is limited to 4096 characters, got 4109");
    m = J("{'template_message':{'omni_template':{'template_id':'t','version':'1'}}}");
    in.app_message = m;
    assert_int_equal(channel_telegram.send(&in, &h, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_contains(e.message, "template_message");
    json_decref(m);
    json_decref(cred);

    ctx_t c = TG;
    c.cred = "{'token':''}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_FAILED_PRECONDITION, "bot token");
    c.cred = "{'token':'12/../x'}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_FAILED_PRECONDITION, "token");
    c = TG;
    c.recipient = "";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_INVALID_ARGUMENT, "chat id");
}

static void test_tg_send_result(void **state)
{
    (void)state;
    channel_result_t r =
        result(&channel_telegram, 200,
               "{'ok':true,'result':{'message_id':4711,'from':{'id':777,'is_bot':true,"
               "'first_name':'ParleyBot'},'chat':{'id':123456789,'first_name':'Ann',"
               "'type':'private'},'date':1717000000,'text':'Hi'}}");
    assert_int_equal(r.outcome, CHANNEL_SENT);
    assert_string_equal(r.provider_id, "123456789:4711");
    assert_string_equal(r.reason_code, "");
    assert_string_equal(r.description, "");
    r = result(
        &channel_telegram, 200,
        "{'ok':true,'result':{'message_id':9,'chat':{'id':-1001234567890,'type':'supergroup'}}}");
    assert_string_equal(r.provider_id, "-1001234567890:9");

    r = result(
        &channel_telegram, 403,
        "{'ok':false,'error_code':403,'description':'Forbidden: bot was blocked by the user'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "RECIPIENT_NOT_REACHABLE");
    assert_string_equal(r.description, "Forbidden: bot was blocked by the user");
    assert_string_equal(r.provider_id, "");
    r = result(&channel_telegram, 429,
               "{'ok':false,'error_code':429,'description':'Too Many Requests: retry after 5',"
               "'parameters':{'retry_after':5}}");
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.reason_code, "RATE_LIMITED");
    r = result(&channel_telegram, 400,
               "{'ok':false,'error_code':400,'description':'Bad Request: chat not found'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "RECIPIENT_INVALID_CHANNEL_IDENTITY");
    r = result(&channel_telegram, 400,
               "{'ok':false,'error_code':400,'description':'Bad Request: wrong file "
               "identifier/HTTP URL specified'}");
    assert_string_equal(r.reason_code, "MEDIA_NOT_REACHABLE");
    r = result(&channel_telegram, 400,
               "{'ok':false,'error_code':400,'description':'Bad Request: message text is empty'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "BAD_REQUEST");
    r = result(&channel_telegram, 401,
               "{'ok':false,'error_code':401,'description':'Unauthorized'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "CHANNEL_BAD_CONFIGURATION");
    r = result(&channel_telegram, 502, "<html>Bad Gateway</html>");
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.reason_code, "CHANNEL_FAILURE");
    assert_string_equal(r.description, "Telegram answered HTTP 502");
    r = result(&channel_telegram, 0, NULL);
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.description, "no answer from Telegram");
    r = result(&channel_telegram, 409,
               "{'ok':false,'error_code':409,'description':'Conflict: terminated by other "
               "getUpdates request'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "CHANNEL_FAILURE");
}

static void test_tg_verify(void **state)
{
    (void)state;
    err_t e = {0};
    hdr_t good[] = {{"X-Telegram-Bot-Api-Secret-Token", "s3cr3t_Token-1"}, {NULL, NULL}};
    hdr_t lower[] = {{"x-telegram-bot-api-secret-token", "s3cr3t_Token-1"}, {NULL, NULL}};
    hdr_t wrong[] = {{"X-Telegram-Bot-Api-Secret-Token", "s3cr3t_Token-2"}, {NULL, NULL}};
    hdr_t prefix[] = {{"X-Telegram-Bot-Api-Secret-Token", "s3cr3t"}, {NULL, NULL}};
    hdr_t none[] = {{"Content-Type", "application/json"}, {NULL, NULL}};
    const char *body = "{\"update_id\":1}";
    assert_int_equal(verify(&channel_telegram, body, good, TG_CRED, "s3cr3t_Token-1", &e), 0);
    assert_int_equal(verify(&channel_telegram, body, lower, TG_CRED, "s3cr3t_Token-1", &e), 0);
    assert_int_equal(verify(&channel_telegram, body, wrong, TG_CRED, "s3cr3t_Token-1", &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(verify(&channel_telegram, body, prefix, TG_CRED, "s3cr3t_Token-1", &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(verify(&channel_telegram, body, none, TG_CRED, "s3cr3t_Token-1", &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_contains(e.message, "missing");
    /* no secret configured: nothing to compare, accepted */
    assert_int_equal(verify(&channel_telegram, body, none, TG_CRED, NULL, &e), 0);
    assert_int_equal(verify(&channel_telegram, body, none, TG_CRED, "", &e), 0);
}

static void test_tg_parse_messages(void **state)
{
    (void)state;
    channel_events_t ev = parse_ok(
        &channel_telegram,
        "{'update_id':10000,'message':{'message_id':1365,'from':{'id':1111111,'is_bot':false,"
        "'first_name':'Ann','last_name':'Smith','username':'anns','language_code':'en'},"
        "'chat':{'id':1111111,'first_name':'Ann','last_name':'Smith','username':'anns','type':'"
        "private'},"
        "'date':1441645532,'text':'/start hello'}}",
        1);
    expect_message(&ev.items[0], "1111111", "1111111:1365",
                   "{'text_message':{'text':'/start hello'}}", 1);
    assert_string_equal(ev.items[0].display_name, "Ann Smith");
    assert_int_equal(ev.items[0].time_ms, 1441645532000LL);
    channel_events_free(&ev);

    /* photo: the largest size, with its caption */
    ev = parse_ok(
        &channel_telegram,
        "{'update_id':10001,'message':{'message_id':7,'from':{'id':5,'is_bot':false,'first_name':'"
        "Bo'},"
        "'chat':{'id':5,'first_name':'Bo','type':'private'},'date':1700000000,'photo':["
        "{'file_id':'AgAD-small','file_unique_id':'u1','file_size':1200,'width':90,'height':67},"
        "{'file_id':'AgAD-large','file_unique_id':'u3','file_size':51000,'width':1280,'height':960}"
        ","
        "{'file_id':'AgAD-medium','file_unique_id':'u2','file_size':9000,'width':320,'height':240}]"
        ","
        "'caption':'my cat'}}",
        1);
    expect_message(&ev.items[0], "5", "5:7",
                   "{'media_card_message':{'url':'telegram-file:AgAD-large','caption':'my cat'}}",
                   0);
    assert_string_equal(ev.items[0].display_name, "Bo");
    channel_events_free(&ev);

    ev = parse_ok(&channel_telegram,
                  "{'update_id':10002,'message':{'message_id':8,'chat':{'id':5,'type':'private'},"
                  "'date':1700000001,'photo':[{'file_id':'P1','file_unique_id':'u','width':90,'"
                  "height':90}]}}",
                  1);
    expect_message(&ev.items[0], "5", "5:8", "{'media_message':{'url':'telegram-file:P1'}}", 0);
    channel_events_free(&ev);

    /* absurd sizes must not overflow */
    ev =
        parse_ok(&channel_telegram,
                 "{'update_id':10002,'message':{'message_id':8,'chat':{'id':5,'type':'private'},"
                 "'date':1700000001,'photo':[{'file_id':'P1','width':9223372036854775807,'height':"
                 "9223372036854775807},{'file_id':'P2','width':-9223372036854775807,'height':3}]}}",
                 1);
    expect_message(&ev.items[0], "5", "5:8", "{'media_message':{'url':'telegram-file:P1'}}", 0);
    channel_events_free(&ev);

    ev = parse_ok(
        &channel_telegram,
        "{'update_id':10003,'message':{'message_id':9,'from':{'id':5,'is_bot':false,'first_name':'"
        "Bo'},"
        "'chat':{'id':5,'type':'private'},'date':1700000002,'document':{'file_name':'invoice.pdf',"
        "'mime_type':'application/"
        "pdf','file_id':'BQAD-doc','file_unique_id':'d','file_size':30000}}}",
        1);
    expect_message(
        &ev.items[0], "5", "5:9",
        "{'media_message':{'url':'telegram-file:BQAD-doc','filename_override':'invoice.pdf'}}", 0);
    channel_events_free(&ev);

    ev = parse_ok(
        &channel_telegram,
        "{'update_id':10004,'message':{'message_id':10,'chat':{'id':5,'type':'private'},"
        "'date':1700000003,'voice':{'duration':3,'mime_type':'audio/ogg','file_id':'AwAD-voice',"
        "'file_unique_id':'v','file_size':8000}}}",
        1);
    expect_message(&ev.items[0], "5", "5:10",
                   "{'media_message':{'url':'telegram-file:AwAD-voice'}}", 0);
    channel_events_free(&ev);

    ev = parse_ok(
        &channel_telegram,
        "{'update_id':10005,'message':{'message_id':11,'chat':{'id':5,'type':'private'},"
        "'date':1700000004,'video':{'duration':10,'width':640,'height':480,'file_id':'BAAD-vid',"
        "'file_unique_id':'x'},'caption':'look'}}",
        1);
    expect_message(&ev.items[0], "5", "5:11",
                   "{'media_card_message':{'url':'telegram-file:BAAD-vid','caption':'look'}}", 0);
    channel_events_free(&ev);

    ev = parse_ok(
        &channel_telegram,
        "{'update_id':10006,'message':{'message_id':12,'chat':{'id':5,'type':'private'},"
        "'date':1700000005,'audio':{'duration':200,'file_name':'song.mp3','file_id':'CQAD-aud',"
        "'file_unique_id':'a'}}}",
        1);
    expect_message(
        &ev.items[0], "5", "5:12",
        "{'media_message':{'url':'telegram-file:CQAD-aud','filename_override':'song.mp3'}}", 0);
    channel_events_free(&ev);

    ev = parse_ok(&channel_telegram,
                  "{'update_id':10007,'message':{'message_id':13,'chat':{'id':5,'type':'private'},"
                  "'date':1700000006,'location':{'latitude':59.329323,'longitude':18.068581}}}",
                  1);
    expect_message(
        &ev.items[0], "5", "5:13",
        "{'location_message':{'coordinates':{'latitude':59.329323,'longitude':18.068581}}}", 1);
    channel_events_free(&ev);

    ev = parse_ok(
        &channel_telegram,
        "{'update_id':10008,'message':{'message_id':14,'chat':{'id':5,'type':'private'},"
        "'date':1700000007,'location':{'latitude':59.3,'longitude':18.1},'venue':{'location':"
        "{'latitude':59.3,'longitude':18.1},'title':'Cafe','address':'Main St 1'}}}",
        1);
    expect_message(
        &ev.items[0], "5", "5:14",
        "{'location_message':{'coordinates':{'latitude':59.3,'longitude':18.1},'title':'Cafe',"
        "'label':'Main St 1'}}",
        1);
    channel_events_free(&ev);

    ev = parse_ok(&channel_telegram,
                  "{'update_id':10009,'message':{'message_id':15,'chat':{'id':5,'type':'private'},"
                  "'date':1700000008,'contact':{'phone_number':'+46701234567','first_name':'Cy',"
                  "'last_name':'Dahl','user_id':42}}}",
                  1);
    expect_message(&ev.items[0], "5", "5:15", "{'text_message':{'text':'Cy Dahl\\n+46701234567'}}",
                   1);
    channel_events_free(&ev);

    /* kinds Parley has no form for are kept raw */
    ev = parse_ok(&channel_telegram,
                  "{'update_id':10010,'message':{'message_id':16,'chat':{'id':5,'type':'private'},"
                  "'date':1700000009,'dice':{'emoji':'🎲','value':4}}}",
                  1);
    expect_message(
        &ev.items[0], "5", "5:16",
        "{'fallback_message':{'raw_message':'{\\'message_id\\':16,\\'chat\\':{\\'id\\':5,"
        "\\'type\\':\\'private\\'},\\'date\\':1700000009,\\'dice\\':{\\'emoji\\':\\'🎲\\',"
        "\\'value\\':4}}','reason':{'code':'UNSUPPORTED_OPERATION','description':"
        "'Telegram message kind not supported by Parley'}}}",
        1);
    channel_events_free(&ev);

    /* group chat: the chat id (negative) is the identity, the sender names the message */
    ev = parse_ok(&channel_telegram,
                  "{'update_id':10011,'message':{'message_id':17,'from':{'id':8,'is_bot':false,'"
                  "first_name':'Di'},"
                  "'chat':{'id':-1001234567890,'title':'Team','type':'supergroup'},'date':"
                  "1700000010,'text':'hi'}}",
                  1);
    expect_message(&ev.items[0], "-1001234567890", "-1001234567890:17",
                   "{'text_message':{'text':'hi'}}", 1);
    assert_string_equal(ev.items[0].display_name, "Di");
    channel_events_free(&ev);
}

static void test_tg_parse_callback_and_ignored(void **state)
{
    (void)state;
    channel_events_t ev = parse_ok(
        &channel_telegram,
        "{'update_id':20000,'callback_query':{'id':'4382bfdwdsb323b2d9','from':{'id':1111111,"
        "'is_bot':false,'first_name':'Ann','last_name':'Smith'},'message':{'message_id':1366,"
        "'from':{'id':777,'is_bot':true,'first_name':'ParleyBot'},'chat':{'id':1111111,'type':'"
        "private'},"
        "'date':1441645600,'text':'Pick one','reply_markup':{'inline_keyboard':[[{'text':'Yes',"
        "'callback_data':'YES'}]]}},'chat_instance':'-8263424','data':'YES'}}",
        1);
    expect_message(
        &ev.items[0], "1111111", "4382bfdwdsb323b2d9",
        "{'choice_response_message':{'message_id':'1111111:1366','postback_data':'YES'}}", 1);
    assert_string_equal(ev.items[0].display_name, "Ann Smith");
    assert_int_equal(ev.items[0].time_ms, 0);
    channel_events_free(&ev);

    /* a button under an inline-mode message: no message, the user's id is the chat */
    ev = parse_ok(
        &channel_telegram,
        "{'update_id':20001,'callback_query':{'id':'cb2','from':{'id':42,'is_bot':false,"
        "'first_name':'Ed'},'inline_message_id':'AAAA-inline','chat_instance':'1','data':'go'}}",
        1);
    expect_message(&ev.items[0], "42", "cb2",
                   "{'choice_response_message':{'message_id':'AAAA-inline','postback_data':'go'}}",
                   1);
    channel_events_free(&ev);

    /* game callbacks (no data), edited messages, membership changes: nothing to store */
    ev = parse_ok(&channel_telegram,
                  "{'update_id':20002,'callback_query':{'id':'cb3','from':{'id':42,'is_bot':false,"
                  "'first_name':'Ed'},'chat_instance':'1','game_short_name':'g'}}",
                  0);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_telegram,
        "{'update_id':20003,'edited_message':{'message_id':1,'chat':{'id':5,'type':'private'},"
        "'date':1,'edit_date':2,'text':'x'}}",
        0);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_telegram,
        "{'update_id':20004,'my_chat_member':{'chat':{'id':5,'type':'private'},'from':{'id':5,"
        "'is_bot':false,'first_name':'Bo'},'date':1,'old_chat_member':{'status':'member'},"
        "'new_chat_member':{'status':'kicked'}}}",
        0);
    channel_events_free(&ev);
}

static void test_tg_parse_malformed(void **state)
{
    (void)state;
    parse_bad_raw(&channel_telegram, "", 0, NULL);
    parse_bad_raw(&channel_telegram, "{\"update_id\":", 13, "invalid JSON");
    parse_bad(&channel_telegram, "[1,2]", "object");
    parse_bad(&channel_telegram, "{'message':{'message_id':1}}", "update_id");
    parse_bad(&channel_telegram, "{'update_id':'1','message':{}}", "update_id");
    parse_bad(&channel_telegram, "{'update_id':1,'message':'hi'}", "message must be an object");
    parse_bad(&channel_telegram, "{'update_id':1,'message':{'message_id':1,'date':1,'text':'x'}}",
              "chat.id");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':'1','chat':{'id':5},'date':1,'text':'x'}}",
              "message_id");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'text':'x'}}", "date");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':9223372036854775807,"
              "'text':'x'}}",
              "date");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':-5,'text':'x'}}",
              "date");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'text':42}}",
              "text");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'photo':[]}}",
              "photo");
    parse_bad(
        &channel_telegram,
        "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'photo':[{'width':1}]}}",
        "file_id");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'document':'x'}}",
              "document");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'location':"
              "{'latitude':'59','longitude':18}}}",
              "latitude");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'contact':{'first_"
              "name':'x'}}}",
              "phone_number");
    parse_bad(&channel_telegram,
              "{'update_id':1,'message':{'message_id':1,'chat':{'id':5},'date':1,'from':'me','text'"
              ":'x'}}",
              "from");
    parse_bad(&channel_telegram, "{'update_id':1,'callback_query':{'from':{'id':1},'data':'x'}}",
              "id");
    parse_bad(&channel_telegram, "{'update_id':1,'callback_query':{'id':'c','data':'x'}}", "from");
    parse_bad(&channel_telegram,
              "{'update_id':1,'callback_query':{'id':'c','from':{'id':1},'data':7}}", "data");
    parse_bad(&channel_telegram,
              "{'update_id':1,'callback_query':{'id':'c','from':{'id':1},'data':'x','message':{'"
              "chat':{}}}}",
              "callback_query.message");
    parse_bad(&channel_telegram, "{'update_id':1,'callback_query':{'id':'c','from':{},'data':'x'}}",
              "from.id");
}

static void test_tg_check(void **state)
{
    (void)state;
    json_t *cred = J(TG_CRED);
    channel_send_t in = {.base_url = "https://api.telegram.org", .credential = cred};
    channel_http_t h = {0};
    err_t e = {0};
    assert_int_equal(channel_telegram.check(&in, &h, &e), 0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.url, tg_url("getMe"));
    assert_null(h.body);
    channel_http_free(&h);
    json_decref(cred);
    cred = J("{}");
    in.credential = cred;
    assert_int_equal(channel_telegram.check(&in, &h, &e), -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    json_decref(cred);

    char desc[256];
    assert_int_equal(
        check_result(&channel_telegram, 200,
                     "{'ok':true,'result':{'id':777,'is_bot':true,'first_name':'ParleyBot',"
                     "'username':'parley_bot','can_join_groups':true}}",
                     desc, sizeof desc),
        0);
    assert_int_equal(check_result(&channel_telegram, 401,
                                  "{'ok':false,'error_code':401,'description':'Unauthorized'}",
                                  desc, sizeof desc),
                     -1);
    assert_string_equal(desc, "Telegram getMe failed (HTTP 401): Unauthorized");
    assert_int_equal(check_result(&channel_telegram, 200, "{'ok':false}", desc, sizeof desc), -1);
    assert_int_equal(check_result(&channel_telegram, 0, NULL, desc, sizeof desc), -1);
    assert_string_equal(desc, "no answer from Telegram");
}

static void test_tg_set_webhook(void **state)
{
    (void)state;
    json_t *cred = J(TG_CRED);
    channel_send_t in = {.base_url = "https://api.telegram.org", .credential = cred};
    channel_http_t h = {0};
    err_t e = {0};
    assert_int_equal(
        channel_telegram_set_webhook(&in, "https://parley.example.com/channels/01HAPP/telegram",
                                     "s3cr3t_Token-1", &h, &e),
        0);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.url, tg_url("setWebhook"));
    char *want = q("{'url':'https://parley.example.com/channels/01HAPP/telegram','secret_token':"
                   "'s3cr3t_Token-1','allowed_updates':['message','callback_query']}");
    assert_string_equal(h.body, want);
    free(want);
    assert_string_equal(header(&h, "Content-Type"), "application/json");
    channel_http_free(&h);
    assert_int_equal(channel_telegram_set_webhook(&in, "https://x.example/t", NULL, &h, &e), 0);
    assert_string_equal(
        h.body,
        "{\"url\":\"https://x.example/t\",\"allowed_updates\":[\"message\",\"callback_query\"]}");
    channel_http_free(&h);
    assert_int_equal(
        channel_telegram_set_webhook(&in, "https://x.example/t", "bad secret!", &h, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    char *long_secret = repeat("a", 257);
    assert_int_equal(channel_telegram_set_webhook(&in, "https://x.example/t", long_secret, &h, &e),
                     -1);
    assert_contains(e.message, "256");
    free(long_secret);
    assert_int_equal(channel_telegram_set_webhook(&in, "http://x.example/t", NULL, &h, &e), -1);
    assert_null(h.url);
    json_decref(cred);
}

static void test_tg_transcode(void **state)
{
    (void)state;
    expect_transcode(&channel_telegram, "{'text_message':{'text':'Hi'}}",
                     "{'method':'sendMessage','text':'Hi'}");
    expect_transcode(
        &channel_telegram,
        "{'card_message':{'title':'T','media_message':{'url':'https://cdn.example.com/a.png'},"
        "'choices':[{'text_message':{'text':'Ok'}}]}}",
        "{'method':'sendPhoto','photo':'https://cdn.example.com/a.png','caption':'T',"
        "'reply_markup':{'inline_keyboard':[[{'text':'Ok','callback_data':'Ok'}]]}}");
    json_t *m = J("{'template_message':{'omni_template':{'template_id':'t','version':'1'}}}");
    err_t e = {0};
    assert_null(channel_telegram.transcode(m, &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    json_decref(m);
}

/* ======================================================================================
 * VIBERBM
 * ====================================================================================== */

#define VB_SEND "https://chatapi.viber.com/pa/send_message"

static void test_vb_descriptor(void **state)
{
    (void)state;
    assert_int_equal(channel_viber.channel, CONVO_VIBERBM);
    assert_string_equal(channel_viber.name, "VIBERBM");
    assert_string_equal(channel_viber.credential_key, "static_bearer");
    assert_string_equal(channel_viber.default_base_url, "https://chatapi.viber.com/pa");
    assert_ptr_equal(channel_get(CONVO_VIBERBM), &channel_viber);
}

static void test_vb_send_text(void **state)
{
    (void)state;
    channel_http_t h;
    err_t e = {0};
    ctx_t c = VB;
    c.base = "http://127.0.0.1:9090/pa//";
    assert_int_equal(do_send(&c, "{'text_message':{'text':'Hello'}}", &h, &e), 0);
    assert_string_equal(h.url, "http://127.0.0.1:9090/pa/send_message");
    assert_string_equal(header(&h, "X-Viber-Auth-Token"), VB_TOKEN);
    assert_string_equal(header(&h, "Content-Type"), "application/json");
    channel_http_free(&h);
    expect_send(&VB, "{'text_message':{'text':'Hello'}}", VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'text','text':'Hello'}");
    /* channel properties name the sender and its avatar */
    c = VB;
    c.props = "{'VIBER_SENDER_NAME':'Shop','VIBER_SENDER_AVATAR':'https://cdn.example.com/av.png'}";
    expect_send(&c, "{'text_message':{'text':'Hello'}}", VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Shop','avatar':"
                "'https://cdn.example.com/av.png'},'type':'text','text':'Hello'}");
}

static void test_vb_send_media(void **state)
{
    (void)state;
    expect_send(&VB,
                "{'media_message':{'url':'https://cdn.example.com/cat.jpg','thumbnail_url':"
                "'https://cdn.example.com/cat-t.jpg'}}",
                VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'picture','text':'','media':'https://cdn.example.com/cat.jpg','thumbnail':"
                "'https://cdn.example.com/cat-t.jpg'}");
    expect_send(&VB, "{'media_message':{'url':'https://cdn.example.com/a.PNG?v=2'}}", VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'picture','text':'','media':'https://cdn.example.com/a.PNG?v=2'}");
    /* video/file need the byte size Parley cannot know: url messages */
    expect_send(&VB, "{'media_message':{'url':'https://cdn.example.com/manual.pdf'}}", VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'url','media':'https://cdn.example.com/manual.pdf'}");
    expect_send(&VB, "{'media_message':{'url':'https://cdn.example.com/clip.mp4'}}", VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'url','media':'https://cdn.example.com/clip.mp4'}");
}

static void test_vb_send_choice(void **state)
{
    (void)state;
    expect_send(
        &VB,
        "{'choice_message':{'text_message':{'text':'Pick one'},'choices':["
        "{'text_message':{'text':'Yes'},'postback_data':'YES'},{'text_message':{'text':'No & "
        "<maybe>'}},"
        "{'url_message':{'title':'Docs','url':'https://parley.dev/docs'}},"
        "{'call_message':{'title':'Call us','phone_number':'+46701234567'}},"
        "{'location_message':{'title':'HQ','coordinates':{'latitude':59.3293,'longitude':18.0686}}}"
        ","
        "{'share_location_message':{'title':'Share','fallback_url':'https://parley.dev/loc'}}]}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
        "'tracking_data':'{\\'message_id\\':\\'01HZY8J4K3M2N1P0Q9R8S7T6V5\\',\\'postbacks\\':"
        "[\\'YES\\',\\'No & <maybe>\\']}','type':'text','text':'Pick one','keyboard':{'Type':"
        "'keyboard','DefaultHeight':false,'Buttons':[{'Columns':6,'Rows':1,'ActionType':'reply',"
        "'ActionBody':'YES','Text':'Yes'},{'Columns':6,'Rows':1,'ActionType':'reply','ActionBody':"
        "'No & <maybe>','Text':'No &amp; "
        "&lt;maybe&gt;'},{'Columns':6,'Rows':1,'ActionType':'open-url',"
        "'ActionBody':'https://parley.dev/docs','Text':'Docs'},{'Columns':6,'Rows':1,'ActionType':"
        "'open-url','ActionBody':'tel:+46701234567','Text':'Call us'},{'Columns':6,'Rows':1,"
        "'ActionType':'open-url','ActionBody':'https://maps.google.com/"
        "?q=59.3293,18.0686','Text':'HQ'},"
        "{'Columns':6,'Rows':1,'ActionType':'open-url','ActionBody':'https://parley.dev/"
        "loc','Text':'Share'}]}}");
    /* only link buttons: no tracking_data */
    expect_send(
        &VB,
        "{'choice_message':{'text_message':{'text':'See'},'choices':[{'url_message':{'title':'Docs'"
        ","
        "'url':'https://parley.dev/docs'}}]}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
        "'type':'text','text':'See','keyboard':{'Type':'keyboard','DefaultHeight':false,'Buttons':"
        "[{'Columns':6,'Rows':1,'ActionType':'open-url','ActionBody':'https://parley.dev/docs',"
        "'Text':'Docs'}]}}");
}

static void test_vb_send_card_carousel(void **state)
{
    (void)state;
    expect_send(
        &VB,
        "{'card_message':{'title':'Sneakers','description':'Size 42','media_message':"
        "{'url':'https://cdn.example.com/s.png'},'choices':[{'text_message':{'text':'Buy'},"
        "'postback_data':'buy-42'}]}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
        "'tracking_data':'{\\'message_id\\':\\'01HZY8J4K3M2N1P0Q9R8S7T6V5\\',"
        "\\'postbacks\\':[\\'buy-42\\']}','type':'rich_media','rich_media':{'Type':"
        "'rich_media','ButtonsGroupColumns':6,'ButtonsGroupRows':7,'BgColor':'#FFFFFF','Buttons':"
        "[{'Columns':6,'Rows':4,'ActionType':'open-url','ActionBody':'https://cdn.example.com/"
        "s.png',"
        "'Image':'https://cdn.example.com/s.png'},{'Columns':6,'Rows':2,'ActionType':'none',"
        "'ActionBody':'none','Text':'<b>Sneakers</b><br>Size 42','TextVAlign':'top','TextHAlign':"
        "'left'},{'Columns':6,'Rows':1,'ActionType':'reply','ActionBody':'buy-42','Text':'Buy'}]}"
        "}");
    /* carousel: one 6x7 group per card, the carousel's choices as a keyboard; a video card
     * shows its link in the text, a thumbnail as image */
    expect_send(
        &VB,
        "{'carousel_message':{'cards':[{'title':'A','media_message':{'url':'https://"
        "cdn.example.com/a.jpg'},"
        "'choices':[{'text_message':{'text':'Take A'}}]},{'title':'B','description':'second'},"
        "{'title':'C','media_message':{'url':'https://cdn.example.com/c.mp4','thumbnail_url':"
        "'https://cdn.example.com/c.jpg'},'choices':[{'url_message':{'title':'1','url':'https://"
        "e.x/1'}},"
        "{'url_message':{'title':'2','url':'https://e.x/2'}},{'url_message':{'title':'3','url':"
        "'https://e.x/"
        "3'}}]}],'choices':[{'text_message':{'text':'None'},'postback_data':'none'}]}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
        "'tracking_data':'{\\'message_id\\':\\'01HZY8J4K3M2N1P0Q9R8S7T6V5\\',"
        "\\'postbacks\\':[\\'Take A\\',\\'none\\']}','type':'rich_media','rich_media':"
        "{'Type':'rich_media','ButtonsGroupColumns':6,'ButtonsGroupRows':7,'BgColor':'#FFFFFF',"
        "'Buttons':[{'Columns':6,'Rows':4,'ActionType':'open-url','ActionBody':"
        "'https://cdn.example.com/a.jpg','Image':'https://cdn.example.com/a.jpg'},{'Columns':6,"
        "'Rows':2,'ActionType':'none','ActionBody':'none','Text':'<b>A</b>','TextVAlign':'top',"
        "'TextHAlign':'left'},{'Columns':6,'Rows':1,'ActionType':'reply','ActionBody':'Take A',"
        "'Text':'Take A'},{'Columns':6,'Rows':7,'ActionType':'none','ActionBody':'none','Text':"
        "'<b>B</b><br>second','TextVAlign':'top','TextHAlign':'left'},{'Columns':6,'Rows':3,"
        "'ActionType':'open-url','ActionBody':'https://cdn.example.com/c.mp4','Image':"
        "'https://cdn.example.com/c.jpg'},{'Columns':6,'Rows':1,'ActionType':'none','ActionBody':"
        "'none','Text':'<b>C</b><br>https://cdn.example.com/c.mp4','TextVAlign':'top','TextHAlign':"
        "'left'},{'Columns':6,'Rows':1,'ActionType':'open-url','ActionBody':'https://e.x/1','Text':"
        "'1'},{'Columns':6,'Rows':1,'ActionType':'open-url','ActionBody':'https://e.x/"
        "2','Text':'2'},"
        "{'Columns':6,'Rows':1,'ActionType':'open-url','ActionBody':'https://e.x/3','Text':'3'}]},"
        "'keyboard':{'Type':'keyboard','DefaultHeight':false,'Buttons':[{'Columns':6,'Rows':1,"
        "'ActionType':'reply','ActionBody':'none','Text':'None'}]}}");
    /* 6 choices + media + text do not fit 7 rows */
    expect_send_error(
        &VB,
        "{'card_message':{'title':'T','media_message':{'url':'https://cdn.example.com/s.png'},"
        "'choices':[{'text_message':{'text':'1'}},{'text_message':{'text':'2'}},{'text_message':"
        "{'text':'3'}},{'text_message':{'text':'4'}},{'text_message':{'text':'5'}},"
        "{'text_message':{'text':'6'}}]}}",
        ERR_INVALID_ARGUMENT, "rich media cards have 7 rows");
    expect_send_error(
        &VB,
        "{'carousel_message':{'cards':[{'title':'1'},{'title':'2'},{'title':'3'},{'title':'4'},"
        "{'title':'5'},{'title':'6'},{'title':'7'}]}}",
        ERR_INVALID_ARGUMENT, "at most 6 cards, got 7");
}

static void test_vb_send_location_contact_list(void **state)
{
    (void)state;
    expect_send(&VB,
                "{'location_message':{'title':'HQ','coordinates':{'latitude':59.3293,'longitude':"
                "18.0686}}}",
                VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'location','location':{'lat':59.3293,'lon':18.0686}}");
    expect_send(
        &VB,
        "{'contact_info_message':{'name':{'full_name':'Ada Lovelace'},'phone_numbers':"
        "[{'phone_number':'+441234567890'}]}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
        "'type':'contact','contact':{'name':'Ada Lovelace','phone_number':'+441234567890'}}");
    expect_send_error(
        &VB,
        "{'contact_info_message':{'name':{'full_name':'Augusta Ada King, Countess of Lovelace'},"
        "'phone_numbers':[{'phone_number':'+441234567890'}]}}",
        ERR_INVALID_ARGUMENT, "contact name is limited to 28 characters, got 38");
    expect_send_error(&VB,
                      "{'contact_info_message':{'name':{'full_name':'Ada'},'phone_numbers':"
                      "[{'phone_number':'+4412345678901234567'}]}}",
                      ERR_INVALID_ARGUMENT, "phone_number is limited to 18");
    expect_send(
        &VB,
        "{'list_message':{'title':'Menu','description':'Today','sections':[{'items':[{'choice':"
        "{'title':'Pasta','postback_data':'p1'}},{'choice':{'title':'Soup'}}]}]}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
        "'tracking_data':'{\\'message_id\\':\\'01HZY8J4K3M2N1P0Q9R8S7T6V5\\',"
        "\\'postbacks\\':[\\'p1\\',\\'Soup\\']}','type':'text','text':'Menu\\nToday',"
        "'keyboard':{'Type':'keyboard','DefaultHeight':false,'Buttons':[{'Columns':6,'Rows':1,"
        "'ActionType':'reply','ActionBody':'p1','Text':'Pasta'},{'Columns':6,'Rows':1,"
        "'ActionType':'reply','ActionBody':'Soup','Text':'Soup'}]}}");
    expect_send(&VB,
                "{'list_message':{'title':'Shop','sections':[{'items':[{'product':{'id':'hat-1',"
                "'marketplace':'FACEBOOK'}}]}]}}",
                VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'text','text':'Shop\\n1. hat-1'}");
}

/* A list rendered as text: title, description and n products whose ids repeat unit. */
static char *vb_list(const char *title_unit, size_t title_n, size_t desc_n, const char *id_unit,
                     size_t id_n, int n)
{
    char *t = repeat(title_unit, title_n), *d = repeat(title_unit, desc_n),
         *id = repeat(id_unit, id_n);
    size_t cap = strlen(t) + strlen(d) + (size_t)n * (strlen(id) + 64) + 256;
    char *s = malloc(cap);
    snprintf(s, cap, "{'list_message':{'title':'%s','description':'%s','sections':[{'items':[", t,
             d);
    for (int i = 0; i < n; i++)
        snprintf(s + strlen(s), cap - strlen(s),
                 "%s{'product':{'id':'%s','marketplace':'FACEBOOK'}}", i ? "," : "", id);
    strcat(s, "]}]}}");
    free(t);
    free(d);
    free(id);
    return s;
}

static void test_vb_send_errors_and_explicit(void **state)
{
    (void)state;
    /* Viber counts characters: 7602 bytes of text in 3822 characters fit */
    char *m = vb_list("\xc3\xa4", 500, 2000, "\xc3\xa4", 128, 10);
    channel_http_t h;
    err_t e = {0};
    if (do_send(&VB, m, &h, &e) < 0) fail_msg("send failed: %s", e.message);
    json_t *b = json_loads(h.body, 0, NULL);
    assert_int_equal(strlen(json_string_value(json_object_get(b, "text"))), 7602);
    json_decref(b);
    channel_http_free(&h);
    free(m);
    /* 7042 characters do not */
    m = vb_list("x", 1000, 4000, "y", 200, 10);
    expect_send_error(&VB, m, ERR_INVALID_ARGUMENT,
                      "message text is limited to 7000 characters, got 7042");
    free(m);
    expect_send_error(&VB,
                      "{'template_message':{'omni_template':{'template_id':'t','version':'1'}}}",
                      ERR_INVALID_ARGUMENT, "template_message");
    ctx_t c = VB;
    c.cred = "{'token':'abc'}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_FAILED_PRECONDITION, "sender name");
    c.props = "{'VIBER_SENDER_NAME':'A name that is far too long for Viber'}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_INVALID_ARGUMENT,
                      "sender name is limited to 28 characters");
    c = VB;
    c.cred = "{'claimed_identity':'Shop'}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_FAILED_PRECONDITION, "auth token");
    c = VB;
    c.recipient = NULL;
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_INVALID_ARGUMENT, "recipient");

    /* explicit_channel_message.VIBERBM: Viber's own message, receiver and sender added */
    expect_send(&VB,
                "{'text_message':{'text':'x'},'explicit_channel_message':{'VIBERBM':"
                "'{\\'type\\':\\'sticker\\',\\'sticker_id\\':46105}'}}",
                VB_SEND,
                "{'receiver':'01234567890A=','min_api_version':7,'sender':{'name':'Parley Shop'},"
                "'type':'sticker','sticker_id':46105}");
    expect_send(
        &VB,
        "{'text_message':{'text':'x'},'explicit_channel_message':{'VIBERBM':"
        "'{\\'min_api_version\\':1,\\'sender\\':{\\'name\\':\\'Bot\\'},\\'receiver\\':\\'other\\',"
        "\\'type\\':\\'file\\',\\'media\\':\\'https://e.x/a.pdf\\',\\'size\\':1024,\\'file_name\\':"
        "\\'a.pdf\\'}'}}",
        VB_SEND,
        "{'receiver':'01234567890A=','min_api_version':1,'sender':{'name':'Bot'},'type':'file',"
        "'media':'https://e.x/a.pdf','size':1024,'file_name':'a.pdf'}");
    expect_send_error(&VB,
                      "{'text_message':{'text':'x'},'explicit_channel_message':{'VIBERBM':'[1]'}}",
                      ERR_INVALID_ARGUMENT, "explicit_channel_message.VIBERBM");
}

static void test_vb_send_result(void **state)
{
    (void)state;
    channel_result_t r =
        result(&channel_viber, 200,
               "{'status':0,'status_message':'ok','message_token':5741311803571721087,"
               "'chat_hostname':'SN-CHAT-05_','billing_status':1}");
    assert_int_equal(r.outcome, CHANNEL_SENT);
    assert_string_equal(r.provider_id, "5741311803571721087");
    assert_string_equal(r.reason_code, "");
    r = result(
        &channel_viber, 200,
        "{'status':6,'status_message':'receiverNotSubscribed','chat_hostname':'SN-CHAT-05_'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "RECIPIENT_NOT_REACHABLE");
    assert_string_equal(r.description, "Viber status 6: receiverNotSubscribed");
    assert_string_equal(r.provider_id, "");
    r = result(&channel_viber, 200, "{'status':5,'status_message':'receiverNotRegistered'}");
    assert_string_equal(r.reason_code, "RECIPIENT_NOT_REACHABLE");
    r = result(&channel_viber, 200, "{'status':2,'status_message':'invalidAuthToken'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "CHANNEL_BAD_CONFIGURATION");
    r = result(&channel_viber, 200, "{'status':3,'status_message':'badData'}");
    assert_string_equal(r.reason_code, "BAD_REQUEST");
    r = result(&channel_viber, 200, "{'status':12,'status_message':'tooManyRequests'}");
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.reason_code, "RATE_LIMITED");
    r = result(&channel_viber, 200, "{'status':99,'status_message':'generalError'}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "CHANNEL_FAILURE");
    r = result(&channel_viber, 503, "Service Unavailable");
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.reason_code, "CHANNEL_FAILURE");
    r = result(&channel_viber, 0, NULL);
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.description, "no answer from Viber");
    r = result(&channel_viber, 200, "not json");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    r = result(&channel_viber, 404, "");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
}

static void hex_hmac(const char *key, const char *body, char out[65], int upper)
{
    uint8_t mac[SEC_HMAC_LEN];
    sec_hmac_sha256(key, strlen(key), body, strlen(body), mac);
    for (int i = 0; i < SEC_HMAC_LEN; i++)
        snprintf(out + 2 * i, 3, upper ? "%02X" : "%02x", mac[i]);
}

static void test_vb_verify(void **state)
{
    (void)state;
    const char *body = "{\"event\":\"delivered\",\"timestamp\":1457764197627,\"message_token\":"
                       "491266184665523145,\"user_id\":\"01234567890A=\"}";
    char sig[65], upper[65], other[65];
    hex_hmac(VB_TOKEN, body, sig, 0);
    hex_hmac(VB_TOKEN, body, upper, 1);
    hex_hmac(VB_TOKEN, "{\"event\":\"seen\"}", other, 0);
    hdr_t good[] = {{"X-Viber-Content-Signature", sig}, {NULL, NULL}};
    hdr_t up[] = {{"x-viber-content-signature", upper}, {NULL, NULL}};
    hdr_t wrong[] = {{"X-Viber-Content-Signature", other}, {NULL, NULL}};
    hdr_t trunc[] = {{"X-Viber-Content-Signature", "abcdef"}, {NULL, NULL}};
    hdr_t none[] = {{NULL, NULL}};
    err_t e = {0};
    assert_int_equal(verify(&channel_viber, body, good, VB_CRED, NULL, &e), 0);
    assert_int_equal(verify(&channel_viber, body, up, VB_CRED, NULL, &e), 0);
    assert_int_equal(verify(&channel_viber, body, wrong, VB_CRED, NULL, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(verify(&channel_viber, body, trunc, VB_CRED, NULL, &e), -1);
    assert_int_equal(verify(&channel_viber, body, none, VB_CRED, NULL, &e), -1);
    assert_contains(e.message, "missing X-Viber-Content-Signature");
    /* the same signature over a different body */
    assert_int_equal(
        verify(&channel_viber, "{\"event\":\"seen\",\"timestamp\":1}", good, VB_CRED, NULL, &e),
        -1);
    /* a different token */
    assert_int_equal(
        verify(&channel_viber, body, good, "{'claimed_identity':'x','token':'other'}", NULL, &e),
        -1);
    assert_int_equal(verify(&channel_viber, body, good, "{}", NULL, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
}

static void test_vb_parse_messages(void **state)
{
    (void)state;
    channel_events_t ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':1457764197627,'chat_hostname':'SN-CHAT-03_','message_token'"
        ":"
        "4912661846655238145,'sender':{'id':'01234567890A=','name':'John McClane','avatar':"
        "'https://avatar.example.com','country':'UK','language':'en','api_version':7},'message':"
        "{'type':'text','text':'a message to the service'},'silent':false}",
        1);
    expect_message(&ev.items[0], "01234567890A=", "4912661846655238145",
                   "{'text_message':{'text':'a message to the service'}}", 1);
    assert_string_equal(ev.items[0].display_name, "John McClane");
    assert_int_equal(ev.items[0].time_ms, 1457764197627LL);
    channel_events_free(&ev);

    /* a reply-button tap: the text is a postback our tracking_data listed */
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':1457764197628,'message_token':4912661846655238146,"
        "'sender':{'id':'01234567890A=','name':'John'},'message':{'type':'text','text':'YES',"
        "'tracking_data':'{\\'message_id\\':\\'01HZY8J4K3M2N1P0Q9R8S7T6V5\\',"
        "\\'postbacks\\':[\\'YES\\',\\'NO\\']}'}}",
        1);
    expect_message(&ev.items[0], "01234567890A=", "4912661846655238146",
                   "{'choice_response_message':{'message_id':'01HZY8J4K3M2N1P0Q9R8S7T6V5',"
                   "'postback_data':'YES'}}",
                   1);
    channel_events_free(&ev);
    /* typed text after a choice message stays text */
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':1,'message_token':7,'sender':{'id':'U='},'message':"
        "{'type':'text','text':'maybe','tracking_data':'{\\'message_id\\':\\'M\\',"
        "\\'postbacks\\':[\\'YES\\']}'}}",
        1);
    expect_message(&ev.items[0], "U=", "7", "{'text_message':{'text':'maybe'}}", 1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':1,'message_token':8,'sender':{'id':'U='},'message':"
        "{'type':'text','text':'YES','tracking_data':'some bot state'}}",
        1);
    expect_message(&ev.items[0], "U=", "8", "{'text_message':{'text':'YES'}}", 1);
    channel_events_free(&ev);

    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':9,'sender':{'id':'U='},'message':"
        "{'type':'picture','text':'look','media':'https://dl-media.viber.com/1/p.jpg',"
        "'thumbnail':'https://dl-media.viber.com/1/t.jpg','file_name':'p.jpg','size':2048}}",
        1);
    expect_message(
        &ev.items[0], "U=", "9",
        "{'media_card_message':{'url':'https://dl-media.viber.com/1/p.jpg','caption':'look'}}", 1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':10,'sender':{'id':'U='},'message':"
        "{'type':'video','media':'https://dl-media.viber.com/1/v.mp4','thumbnail':"
        "'https://dl-media.viber.com/1/vt.jpg','size':10000,'duration':10}}",
        1);
    expect_message(&ev.items[0], "U=", "10",
                   "{'media_message':{'url':'https://dl-media.viber.com/1/v.mp4','thumbnail_url':"
                   "'https://dl-media.viber.com/1/vt.jpg'}}",
                   1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':11,'sender':{'id':'U='},'message':"
        "{'type':'file','media':'https://dl-media.viber.com/1/"
        "f','file_name':'cv.pdf','size':5000}}",
        1);
    expect_message(
        &ev.items[0], "U=", "11",
        "{'media_message':{'url':'https://dl-media.viber.com/1/f','filename_override':'cv.pdf'}}",
        1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':12,'sender':{'id':'U='},'message':"
        "{'type':'location','location':{'lat':50.76891,'lon':6.11499,'address':'Aachen'}}}",
        1);
    expect_message(&ev.items[0], "U=", "12",
                   "{'location_message':{'coordinates':{'latitude':50.76891,'longitude':6.11499},"
                   "'label':'Aachen'}}",
                   1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':13,'sender':{'id':'U='},'message':"
        "{'type':'contact','contact':{'name':'Itamar','phone_number':'+972511123123'}}}",
        1);
    expect_message(&ev.items[0], "U=", "13", "{'text_message':{'text':'Itamar\\n+972511123123'}}",
                   1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':14,'sender':{'id':'U='},'message':"
        "{'type':'url','media':'https://www.example.com/go'}}",
        1);
    expect_message(&ev.items[0], "U=", "14",
                   "{'text_message':{'text':'https://www.example.com/go'}}", 1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':15,'sender':{'id':'U='},'message':"
        "{'type':'sticker','sticker_id':46105,'media':'https://viber.com/stickers/46105.png'}}",
        1);
    expect_message(&ev.items[0], "U=", "15",
                   "{'media_message':{'url':'https://viber.com/stickers/46105.png'}}", 1);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_viber,
        "{'event':'message','timestamp':2,'message_token':'16','sender':{'id':'U='},'message':"
        "{'type':'rich_media','rich_media':{}}}",
        1);
    assert_string_equal(ev.items[0].provider_id, "16");
    assert_non_null(json_object_get(ev.items[0].contact_message, "fallback_message"));
    channel_events_free(&ev);
}

static void test_vb_parse_receipts_and_ignored(void **state)
{
    (void)state;
    channel_events_t ev =
        parse_ok(&channel_viber,
                 "{'event':'delivered','timestamp':1457764197627,'chat_hostname':"
                 "'SN-CHAT-03_','message_token':491266184665523145,'user_id':'01234567890A='}",
                 1);
    expect_receipt(&ev.items[0], "01234567890A=", "491266184665523145", "DELIVERED", "");
    assert_int_equal(ev.items[0].time_ms, 1457764197627LL);
    channel_events_free(&ev);
    ev = parse_ok(&channel_viber,
                  "{'event':'seen','timestamp':1457764197628,'message_token':491266184665523145,"
                  "'user_id':'01234567890A='}",
                  1);
    expect_receipt(&ev.items[0], "01234567890A=", "491266184665523145", "READ", "");
    channel_events_free(&ev);
    ev = parse_ok(&channel_viber,
                  "{'event':'failed','timestamp':1457764197629,'message_token':491266184665523145,"
                  "'user_id':'01234567890A=','desc':'failure description'}",
                  1);
    expect_receipt(&ev.items[0], "01234567890A=", "491266184665523145", "FAILED",
                   "RECIPIENT_NOT_REACHABLE");
    channel_events_free(&ev);
    const char *ignored[] = {
        "{'event':'subscribed','timestamp':1,'user':{'id':'U=','name':'J'},'message_token':1}",
        "{'event':'unsubscribed','timestamp':1,'user_id':'U=','message_token':1}",
        "{'event':'conversation_started','timestamp':1,'message_token':1,'type':'open','context':'"
        "c',"
        "'user':{'id':'U=','name':'J'},'subscribed':false}",
        "{'event':'webhook','timestamp':1457764197627,'chat_hostname':'SN-172_','message_token':1}",
        "{'event':'client_status','timestamp':1}",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        ev = parse_ok(&channel_viber, ignored[i], 0);
        channel_events_free(&ev);
    }
}

static void test_vb_parse_malformed(void **state)
{
    (void)state;
    parse_bad_raw(&channel_viber, "", 0, NULL);
    parse_bad_raw(&channel_viber, "{\"event\"", 8, "invalid JSON");
    parse_bad(&channel_viber, "[]", "event");
    parse_bad(&channel_viber, "{'timestamp':1}", "event");
    parse_bad(&channel_viber, "{'event':7}", "event");
    parse_bad(&channel_viber,
              "{'event':'message','timestamp':'now','message_token':1,'sender':{'id':'U'},"
              "'message':{'type':'text','text':'x'}}",
              "timestamp");
    parse_bad(&channel_viber,
              "{'event':'message','message_token':1,'message':{'type':'text','text':'x'}}",
              "sender.id");
    parse_bad(&channel_viber,
              "{'event':'message','message_token':1,'sender':{'id':'U'},'message':'x'}",
              "message must be an object");
    parse_bad(&channel_viber,
              "{'event':'message','sender':{'id':'U'},'message':{'type':'text','text':'x'}}",
              "message_token");
    parse_bad(&channel_viber,
              "{'event':'message','message_token':1,'sender':{'id':'U'},'message':{'text':'x'}}",
              "type");
    parse_bad(&channel_viber,
              "{'event':'message','message_token':1,'sender':{'id':'U'},'message':{'type':'text','"
              "text':5}}",
              "text");
    parse_bad(
        &channel_viber,
        "{'event':'message','message_token':1,'sender':{'id':'U'},'message':{'type':'picture'}}",
        "media");
    parse_bad(
        &channel_viber,
        "{'event':'message','message_token':1,'sender':{'id':'U'},'message':{'type':'location',"
        "'location':{'lat':'50','lon':6}}}",
        "lat");
    parse_bad(
        &channel_viber,
        "{'event':'message','message_token':1,'sender':{'id':'U'},'message':{'type':'contact',"
        "'contact':{'name':'x'}}}",
        "phone_number");
    parse_bad(&channel_viber, "{'event':'delivered','message_token':1}", "user_id");
    parse_bad(&channel_viber, "{'event':'seen','user_id':'U','message_token':true}",
              "message_token");
}

static void test_vb_check_transcode(void **state)
{
    (void)state;
    json_t *cred = J(VB_CRED);
    channel_send_t in = {.base_url = "https://chatapi.viber.com/pa", .credential = cred};
    channel_http_t h = {0};
    err_t e = {0};
    assert_int_equal(channel_viber.check(&in, &h, &e), 0);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.url, "https://chatapi.viber.com/pa/get_account_info");
    assert_string_equal(h.body, "{}");
    assert_string_equal(header(&h, "X-Viber-Auth-Token"), VB_TOKEN);
    channel_http_free(&h);
    json_decref(cred);

    char desc[256];
    assert_int_equal(
        check_result(&channel_viber, 200,
                     "{'status':0,'status_message':'ok','id':'pa:75346594275468546724',"
                     "'name':'Parley Shop','uri':'parleyshop','subscribers_count':35}",
                     desc, sizeof desc),
        0);
    assert_int_equal(check_result(&channel_viber, 200,
                                  "{'status':2,'status_message':'invalidAuthToken'}", desc,
                                  sizeof desc),
                     -1);
    assert_string_equal(desc, "Viber get_account_info failed: status 2 invalidAuthToken");
    assert_int_equal(check_result(&channel_viber, 500, "oops", desc, sizeof desc), -1);
    assert_string_equal(desc, "Viber get_account_info failed: HTTP 500");
    assert_int_equal(check_result(&channel_viber, 0, NULL, desc, sizeof desc), -1);

    expect_transcode(&channel_viber, "{'text_message':{'text':'Hi'}}",
                     "{'min_api_version':7,'type':'text','text':'Hi'}");
    expect_transcode(&channel_viber,
                     "{'choice_message':{'text_message':{'text':'Q'},'choices':[{'text_message':{'"
                     "text':'A'}}]}}",
                     "{'min_api_version':7,'type':'text','text':'Q','keyboard':{'Type':'keyboard',"
                     "'DefaultHeight':false,'Buttons':[{'Columns':6,'Rows':1,'ActionType':'reply',"
                     "'ActionBody':'A','Text':'A'}]}}");
}

/* ======================================================================================
 * RCS
 * ====================================================================================== */

#define RCS_SEND                                                                                   \
    "https://rcsbusinessmessaging.googleapis.com/v1/phones/+14155550100/agentMessages?messageId="  \
    "01HZY8J4K3M2N1P0Q9R8S7T6V5&agentId=parley_demo_agent"

static void test_rcs_descriptor(void **state)
{
    (void)state;
    assert_int_equal(channel_rcs.channel, CONVO_RCS);
    assert_string_equal(channel_rcs.name, "RCS");
    assert_string_equal(channel_rcs.credential_key, "static_bearer");
    assert_string_equal(channel_rcs.default_base_url,
                        "https://rcsbusinessmessaging.googleapis.com/v1");
    assert_ptr_equal(channel_get(CONVO_RCS), &channel_rcs);
    assert_non_null(channel_rcs.handshake);
}

static void test_rcs_send_text_media(void **state)
{
    (void)state;
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(do_send(&RC, "{'text_message':{'text':'Hello'}}", &h, &e), 0);
    assert_string_equal(h.url, RCS_SEND);
    assert_string_equal(header(&h, "Authorization"), "Bearer ya29.a0AfH6SMBx-token");
    assert_string_equal(h.body, "{\"contentMessage\":{\"text\":\"Hello\"}}");
    channel_http_free(&h);
    /* identities without "+" get it; query values are percent-encoded */
    ctx_t c = RC;
    c.recipient = "14155550100";
    c.cred = "{'claimed_identity':'agent@partner/x','token':'t'}";
    c.base = "http://127.0.0.1:7000/v1/";
    expect_send(&c, "{'text_message':{'text':'Hi'}}",
                "http://127.0.0.1:7000/v1/phones/+14155550100/agentMessages?messageId="
                "01HZY8J4K3M2N1P0Q9R8S7T6V5&agentId=agent%40partner%2Fx",
                "{'contentMessage':{'text':'Hi'}}");
    expect_send(&RC,
                "{'media_message':{'url':'https://cdn.example.com/cat.jpg','thumbnail_url':"
                "'https://cdn.example.com/cat-t.jpg'}}",
                RCS_SEND,
                "{'contentMessage':{'contentInfo':{'fileUrl':'https://cdn.example.com/cat.jpg',"
                "'thumbnailUrl':'https://cdn.example.com/cat-t.jpg'}}}");
    expect_send(
        &RC, "{'media_message':{'url':'https://cdn.example.com/manual.pdf'}}", RCS_SEND,
        "{'contentMessage':{'contentInfo':{'fileUrl':'https://cdn.example.com/manual.pdf'}}}");
}

static void test_rcs_send_choice(void **state)
{
    (void)state;
    expect_send(
        &RC,
        "{'choice_message':{'text_message':{'text':'Pick one'},'choices':["
        "{'text_message':{'text':'Yes'},'postback_data':'YES'},"
        "{'url_message':{'title':'Docs','url':'https://parley.dev/docs'}},"
        "{'call_message':{'title':'Call us','phone_number':'46701234567'},'postback_data':'call'},"
        "{'location_message':{'title':'HQ','coordinates':{'latitude':59.3293,'longitude':18.0686}}}"
        ","
        "{'calendar_message':{'title':'Add to calendar','event_start':'2026-01-10T10:00:00Z',"
        "'event_end':'2026-01-10T11:00:00Z','event_title':'Demo','event_description':'Parley demo',"
        "'fallback_url':'https://parley.dev/cal'}},"
        "{'share_location_message':{'title':'Share "
        "location','fallback_url':'https://parley.dev/loc'}}]}}",
        RCS_SEND,
        "{'contentMessage':{'text':'Pick one','suggestions':[{'reply':{'text':'Yes','postbackData':"
        "'YES'}},{'action':{'text':'Docs','postbackData':'Docs','openUrlAction':{'url':"
        "'https://parley.dev/docs'}}},{'action':{'text':'Call "
        "us','postbackData':'call','dialAction':"
        "{'phoneNumber':'+46701234567'}}},{'action':{'text':'HQ','postbackData':'HQ','"
        "viewLocationAction':"
        "{'latLong':{'latitude':59.3293,'longitude':18.0686},'label':'HQ'}}},{'action':{'text':"
        "'Add to calendar','postbackData':'Add to "
        "calendar','createCalendarEventAction':{'startTime':"
        "'2026-01-10T10:00:00Z','endTime':'2026-01-10T11:00:00Z','title':'Demo','description':"
        "'Parley demo'}}},{'action':{'text':'Share location','postbackData':'Share location',"
        "'shareLocationAction':{}}}]}}");
    expect_send(&RC,
                "{'choice_message':{'choices':[{'text_message':{'text':'A'}},{'text_message':{'"
                "text':'B'}}]}}",
                RCS_SEND,
                "{'contentMessage':{'text':'1. A\\n2. "
                "B','suggestions':[{'reply':{'text':'A','postbackData':"
                "'A'}},{'reply':{'text':'B','postbackData':'B'}}]}}");
    /* chips show at most 25 characters */
    expect_send_error(&RC,
                      "{'choice_message':{'text_message':{'text':'Q'},'choices':[{'text_message':"
                      "{'text':'This answer is far too long'}}]}}",
                      ERR_INVALID_ARGUMENT, "suggestion text is limited to 25 characters, got 27");
    char *pb = repeat("p", 2049), buf[2400];
    snprintf(
        buf, sizeof buf,
        "{'choice_message':{'text_message':{'text':'Q'},'choices':[{'text_message':{'text':'A'},"
        "'postback_data':'%s'}]}}",
        pb);
    free(pb);
    expect_send_error(&RC, buf, ERR_INVALID_ARGUMENT, "postbackData is limited to 2048 characters");
}

static void test_rcs_send_cards(void **state)
{
    (void)state;
    expect_send(
        &RC,
        "{'card_message':{'title':'Sneakers','description':'Size "
        "42','height':'TALL','media_message':"
        "{'url':'https://cdn.example.com/s.png'},'choices':[{'text_message':{'text':'Buy'},"
        "'postback_data':'buy-42'}]}}",
        RCS_SEND,
        "{'contentMessage':{'richCard':{'standaloneCard':{'cardOrientation':'VERTICAL','"
        "cardContent':"
        "{'title':'Sneakers','description':'Size 42','media':{'height':'TALL','contentInfo':"
        "{'fileUrl':'https://cdn.example.com/s.png'}},'suggestions':[{'reply':{'text':'Buy',"
        "'postbackData':'buy-42'}}]}}}}}");
    expect_send(&RC, "{'card_message':{'description':'Just text'}}", RCS_SEND,
                "{'contentMessage':{'richCard':{'standaloneCard':{'cardOrientation':'VERTICAL',"
                "'cardContent':{'description':'Just text'}}}}}");
    expect_send(
        &RC,
        "{'carousel_message':{'cards':[{'title':'A','media_message':{'url':'https://"
        "cdn.example.com/a.jpg'},"
        "'choices':[{'text_message':{'text':'Take A'}}]},{'title':'B','description':'second',"
        "'height':'SHORT','media_message':{'url':'https://cdn.example.com/b.jpg'}}],'choices':"
        "[{'text_message':{'text':'None'},'postback_data':'none'}]}}",
        RCS_SEND,
        "{'contentMessage':{'richCard':{'carouselCard':{'cardWidth':'MEDIUM','cardContents':[{'"
        "title':"
        "'A','media':{'height':'MEDIUM','contentInfo':{'fileUrl':'https://cdn.example.com/a.jpg'}},"
        "'suggestions':[{'reply':{'text':'Take A','postbackData':'Take A'}}]},{'title':'B',"
        "'description':'second','media':{'height':'SHORT','contentInfo':{'fileUrl':"
        "'https://cdn.example.com/"
        "b.jpg'}}}]}},'suggestions':[{'reply':{'text':'None','postbackData':"
        "'none'}}]}}");
    /* a one-card carousel is a standalone card (RBM carousels need two) */
    expect_send(&RC, "{'carousel_message':{'cards':[{'title':'Only'}]}}", RCS_SEND,
                "{'contentMessage':{'richCard':{'standaloneCard':{'cardOrientation':'VERTICAL',"
                "'cardContent':{'title':'Only'}}}}}");
    expect_send_error(
        &RC,
        "{'card_message':{'title':'T','choices':[{'text_message':{'text':'1'}},{'text_message':"
        "{'text':'2'}},{'text_message':{'text':'3'}},{'text_message':{'text':'4'}},"
        "{'text_message':{'text':'5'}}]}}",
        ERR_INVALID_ARGUMENT, "at most 4 suggestions on card 0, got 5");
    char *title = repeat("t", 201), buf[400];
    snprintf(buf, sizeof buf, "{'card_message':{'title':'%s'}}", title);
    free(title);
    expect_send_error(&RC, buf, ERR_INVALID_ARGUMENT,
                      "card title is limited to 200 characters, got 201");
}

static void test_rcs_send_location_contact_list(void **state)
{
    (void)state;
    expect_send(
        &RC,
        "{'location_message':{'title':'HQ','label':'Main St 1','coordinates':{'latitude':59.3293,"
        "'longitude':18.0686}}}",
        RCS_SEND,
        "{'contentMessage':{'text':'HQ\\nMain St 1','suggestions':[{'action':{'text':'HQ',"
        "'postbackData':'view_location','viewLocationAction':{'latLong':{'latitude':59.3293,"
        "'longitude':18.0686},'label':'Main St 1'}}}]}}");
    expect_send(
        &RC,
        "{'location_message':{'title':'Our headquarters in the old town','coordinates':"
        "{'latitude':59.3293,'longitude':18.0686}}}",
        RCS_SEND,
        "{'contentMessage':{'text':'Our headquarters in the old town','suggestions':[{'action':"
        "{'text':'View location','postbackData':'view_location','viewLocationAction':{'latLong':"
        "{'latitude':59.3293,'longitude':18.0686},'label':'Our headquarters in the old "
        "town'}}}]}}");
    expect_send(&RC,
                "{'contact_info_message':{'name':{'full_name':'Ada Lovelace'},'phone_numbers':"
                "[{'phone_number':'+441234567890'}],'email_addresses':[{'email_address':'ada@"
                "example.com'}]}}",
                RCS_SEND,
                "{'contentMessage':{'text':'Ada Lovelace\\n+441234567890\\nada@example.com'}}");
    expect_send(
        &RC,
        "{'list_message':{'title':'Menu','sections':[{'items':[{'choice':{'title':'Pasta',"
        "'postback_data':'p1'}},{'choice':{'title':'Soup'}}]}]}}",
        RCS_SEND,
        "{'contentMessage':{'text':'Menu','suggestions':[{'reply':{'text':'Pasta','postbackData':"
        "'p1'}},{'reply':{'text':'Soup','postbackData':'Soup'}}]}}");
    /* 12 items do not fit 11 chips: plain text */
    char buf[2048] = "{'list_message':{'title':'Many','sections':[{'items':[";
    for (int i = 0; i < 12; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s{'choice':{'title':'item %d'}}",
                 i ? "," : "", i + 1);
    strcat(buf, "]}]}}");
    expect_send(&RC, buf, RCS_SEND,
                "{'contentMessage':{'text':'Many\\n1. item 1\\n2. item 2\\n3. item 3\\n4. item "
                "4\\n5. item 5\\n"
                "6. item 6\\n7. item 7\\n8. item 8\\n9. item 9\\n10. item 10\\n11. item 11\\n12. "
                "item 12'}}");
    expect_send(&RC,
                "{'list_message':{'title':'Shop','sections':[{'items':[{'product':{'id':'hat-1',"
                "'marketplace':'FACEBOOK'}}]}]}}",
                RCS_SEND, "{'contentMessage':{'text':'Shop\\n1. hat-1'}}");
}

static void test_rcs_send_errors_and_explicit(void **state)
{
    (void)state;
    char *t = repeat("\xc3\xa4", 3072), buf[7000];
    snprintf(buf, sizeof buf, "{'text_message':{'text':'%s'}}", t);
    free(t);
    json_t *m = J(buf), *cred = J(RCS_CRED);
    channel_send_t in = {.base_url = "https://rcs.test/v1",
                         .credential = cred,
                         .recipient = "+14155550100",
                         .app_message = m,
                         .message_id = MSG_ID};
    channel_http_t h = {0};
    err_t e = {0};
    assert_int_equal(channel_rcs.send(&in, &h, &e), 0);
    channel_http_free(&h);
    json_decref(m);
    t = repeat("x", 3073);
    snprintf(buf, sizeof buf, "{'text_message':{'text':'%.4000s'}}", t);
    free(t);
    m = J(buf);
    in.app_message = m;
    assert_int_equal(channel_rcs.send(&in, &h, &e), -1);
    assert_contains(e.message, "message text is limited to 3072 characters, got 3073");
    json_decref(m);
    m = J("{'text_message':{'text':'x'}}");
    in.app_message = m;
    in.message_id = NULL;
    assert_int_equal(channel_rcs.send(&in, &h, &e), -1);
    assert_contains(e.message, "message id");
    json_decref(m);
    json_decref(cred);

    expect_send_error(&RC,
                      "{'template_message':{'omni_template':{'template_id':'t','version':'1'}}}",
                      ERR_INVALID_ARGUMENT, "template_message");
    ctx_t c = RC;
    c.recipient = "+1 415 555";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_INVALID_ARGUMENT, "E.164");
    c.recipient = "user@example.com";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_INVALID_ARGUMENT, "E.164");
    c = RC;
    c.cred = "{'token':'t'}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_FAILED_PRECONDITION, "agent id");
    c.cred = "{'claimed_identity':'a'}";
    expect_send_error(&c, "{'text_message':{'text':'x'}}", ERR_FAILED_PRECONDITION, "access token");

    expect_send(&RC,
                "{'text_message':{'text':'x'},'explicit_channel_message':{'RCS':"
                "'{\\'contentMessage\\':{\\'text\\':\\'raw\\'},\\'ttl\\':\\'3600s\\'}'}}",
                RCS_SEND, "{'contentMessage':{'text':'raw'},'ttl':'3600s'}");
    expect_send(&RC,
                "{'text_message':{'text':'x'},'explicit_channel_message':{'RCS':'{\\'text\\':\\'"
                "bare\\'}'}}",
                RCS_SEND, "{'contentMessage':{'text':'bare'}}");
    expect_send_error(&RC, "{'text_message':{'text':'x'},'explicit_channel_message':{'RCS':'{}'}}",
                      ERR_INVALID_ARGUMENT, "explicit_channel_message.RCS");
}

static void test_rcs_send_result(void **state)
{
    (void)state;
    channel_result_t r =
        result(&channel_rcs, 200,
               "{'name':'phones/+14155550100/agentMessages/01HZY8J4K3M2N1P0Q9R8S7T6V5',"
               "'sendTime':'2024-05-29T10:00:00.123456Z','contentMessage':{'text':'Hello'}}");
    assert_int_equal(r.outcome, CHANNEL_SENT);
    assert_string_equal(r.provider_id, "01HZY8J4K3M2N1P0Q9R8S7T6V5");
    assert_string_equal(r.reason_code, "");
    r = result(
        &channel_rcs, 404,
        "{'error':{'code':404,'message':'Requested entity was not found.','status':'NOT_FOUND'}}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "RECIPIENT_NOT_REACHABLE");
    assert_string_equal(r.description, "RBM answered HTTP 404: Requested entity was not found.");
    r = result(&channel_rcs, 429,
               "{'error':{'code':429,'message':'Quota exceeded','status':'RESOURCE_EXHAUSTED'}}");
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.reason_code, "RATE_LIMITED");
    r = result(&channel_rcs, 400,
               "{'error':{'code':400,'message':'Invalid JSON payload "
               "received.','status':'INVALID_ARGUMENT'}}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "BAD_REQUEST");
    r = result(&channel_rcs, 401,
               "{'error':{'code':401,'message':'Request had invalid authentication credentials.',"
               "'status':'UNAUTHENTICATED'}}");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "CHANNEL_BAD_CONFIGURATION");
    r = result(
        &channel_rcs, 403,
        "{'error':{'code':403,'message':'Agent is not launched','status':'PERMISSION_DENIED'}}");
    assert_string_equal(r.reason_code, "CHANNEL_BAD_CONFIGURATION");
    r = result(&channel_rcs, 409,
               "{'error':{'code':409,'message':'Requested entity already "
               "exists','status':'ALREADY_EXISTS'}}");
    assert_int_equal(r.outcome, CHANNEL_SENT);
    r = result(&channel_rcs, 503,
               "{'error':{'code':503,'message':'unavailable','status':'UNAVAILABLE'}}");
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.reason_code, "CHANNEL_FAILURE");
    r = result(&channel_rcs, 0, NULL);
    assert_int_equal(r.outcome, CHANNEL_RETRY);
    assert_string_equal(r.description, "no answer from RBM");
    r = result(&channel_rcs, 418, "teapot");
    assert_int_equal(r.outcome, CHANNEL_FAILED);
    assert_string_equal(r.reason_code, "CHANNEL_FAILURE");
}

/* base64(HMAC-SHA512(data, key)) as RBM computes X-Goog-Signature. */
static void goog_sig(const char *key, const char *data, size_t len, char out[128])
{
    uint8_t mac[crypto_auth_hmacsha512_BYTES];
    crypto_auth_hmacsha512_state st;
    crypto_auth_hmacsha512_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha512_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha512_final(&st, mac);
    assert_true(sec_b64_encode(mac, sizeof mac, out, 128) > 0);
}

/* A Pub/Sub push envelope around an event (single-quoted JSON). Caller frees. */
static char *envelope(const char *event_single_quoted, char **event_out)
{
    char *ev = q(event_single_quoted), b64[4096];
    assert_true(sec_b64_encode(ev, strlen(ev), b64, sizeof b64) > 0);
    char *out = malloc(strlen(b64) + 512);
    sprintf(
        out,
        "{\"message\":{\"attributes\":{\"message_type\":\"TEXT\",\"product\":\"RBM\"},\"data\":\"%"
        "s\","
        "\"messageId\":\"2085735385327411\",\"message_id\":\"2085735385327411\",\"publishTime\":"
        "\"2024-05-29T10:00:01.5Z\",\"publish_time\":\"2024-05-29T10:00:01.5Z\"},\"subscription\":"
        "\"projects/rbm-parley-demo/subscriptions/rbm-agent-subscription\"}",
        b64);
    if (event_out)
        *event_out = ev;
    else
        free(ev);
    return out;
}

static void test_rcs_verify(void **state)
{
    (void)state;
    const char *secret = "SJENCPGJESMGUFPY";
    char *event = NULL;
    char *body =
        envelope("{'senderPhoneNumber':'+14155550100','messageId':'MxAbC','sendTime':"
                 "'2024-05-29T10:00:00.123456Z','text':'Hi','agentId':'parley_demo_agent'}",
                 &event);
    char sig_data[128], sig_body[128], sig_other[128];
    goog_sig(secret, event, strlen(event), sig_data);
    goog_sig(secret, body, strlen(body), sig_body);
    goog_sig("another-token", event, strlen(event), sig_other);
    hdr_t h_data[] = {{"X-Goog-Signature", sig_data}, {NULL, NULL}};
    hdr_t h_body[] = {{"x-goog-signature", sig_body}, {NULL, NULL}};
    hdr_t h_other[] = {{"X-Goog-Signature", sig_other}, {NULL, NULL}};
    hdr_t h_junk[] = {{"X-Goog-Signature", "bm90IGEgc2lnbmF0dXJl"}, {NULL, NULL}};
    hdr_t none[] = {{NULL, NULL}};
    err_t e = {0};
    /* RBM's own scheme: HMAC over the decoded message.data */
    assert_int_equal(verify(&channel_rcs, body, h_data, RCS_CRED, secret, &e), 0);
    /* over the raw body (plain-JSON deliveries) */
    assert_int_equal(verify(&channel_rcs, body, h_body, RCS_CRED, secret, &e), 0);
    assert_int_equal(verify(&channel_rcs, body, h_other, RCS_CRED, secret, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(verify(&channel_rcs, body, h_junk, RCS_CRED, secret, &e), -1);
    assert_int_equal(verify(&channel_rcs, body, none, RCS_CRED, secret, &e), -1);
    assert_contains(e.message, "missing X-Goog-Signature");
    /* the signature of one event does not cover another */
    char *body2 =
        envelope("{'senderPhoneNumber':'+14155550100','messageId':'MxAbD','text':'Bye'}", NULL);
    assert_int_equal(verify(&channel_rcs, body2, h_data, RCS_CRED, secret, &e), -1);
    assert_int_equal(verify(&channel_rcs, body2, h_body, RCS_CRED, secret, &e), -1);
    /* plain JSON event signed over the body */
    const char *plain =
        "{\"senderPhoneNumber\":\"+14155550100\",\"messageId\":\"M1\",\"text\":\"Hi\"}";
    char sig_plain[128];
    goog_sig(secret, plain, strlen(plain), sig_plain);
    hdr_t h_plain[] = {{"X-Goog-Signature", sig_plain}, {NULL, NULL}};
    assert_int_equal(verify(&channel_rcs, plain, h_plain, RCS_CRED, secret, &e), 0);
    /* no clientToken configured: accepted */
    assert_int_equal(verify(&channel_rcs, body, none, RCS_CRED, NULL, &e), 0);
    /* the webhook registration request is checked by its clientToken */
    assert_int_equal(verify(&channel_rcs,
                            "{\"clientToken\":\"SJENCPGJESMGUFPY\",\"secret\":\"1234567890\"}",
                            none, RCS_CRED, secret, &e),
                     0);
    assert_int_equal(verify(&channel_rcs, "{\"clientToken\":\"WRONG\",\"secret\":\"1234567890\"}",
                            none, RCS_CRED, secret, &e),
                     -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    free(body);
    free(body2);
    free(event);
}

static void test_rcs_handshake(void **state)
{
    (void)state;
    json_t *cred = J(RCS_CRED);
    channel_reply_t reply = {0};
    err_t e = {0};
    channel_inbound_t in =
        inbound("{\"clientToken\":\"SJENCPGJESMGUFPY\",\"secret\":\"1234567890\"}", NULL);
    assert_int_equal(channel_rcs.handshake(&in, cred, "SJENCPGJESMGUFPY", &reply, &e), 0);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.body, "1234567890");
    memset(&reply, 0, sizeof reply);
    assert_int_equal(channel_rcs.handshake(&in, cred, "OTHER", &reply, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(reply.status, 0);
    /* Not a handshake: 1, and the caller goes on to verify and parse it. */
    assert_int_equal(channel_rcs.handshake_on_post, 1);
    in = inbound("{\"senderPhoneNumber\":\"+1\",\"text\":\"x\"}", NULL);
    assert_int_equal(channel_rcs.handshake(&in, cred, "SJENCPGJESMGUFPY", &reply, &e), 1);
    in = inbound("", NULL);
    assert_int_equal(channel_rcs.handshake(&in, cred, NULL, &reply, &e), 1);
    json_decref(cred);
}

static channel_events_t rcs_env_ok(const char *event_single_quoted, size_t n)
{
    char *body = envelope(event_single_quoted, NULL);
    channel_inbound_t in = inbound(body, NULL);
    channel_events_t ev = {0};
    err_t e = {0};
    if (channel_rcs.parse(&in, &ev, &e) < 0) fail_msg("parse failed: %s", e.message);
    assert_int_equal(ev.n, n);
    free(body);
    return ev;
}

static void test_rcs_parse_messages(void **state)
{
    (void)state;
    channel_events_t ev =
        rcs_env_ok("{'senderPhoneNumber':'+14155550100','messageId':"
                   "'MxVJ4VXyKyTBy2pX2TlDOnUA','sendTime':'2024-05-29T10:00:00.123456789Z',"
                   "'conversationId':'c1','agentId':'parley_demo_agent','text':'Hello RBM'}",
                   1);
    expect_message(&ev.items[0], "14155550100", "MxVJ4VXyKyTBy2pX2TlDOnUA",
                   "{'text_message':{'text':'Hello RBM'}}", 1);
    assert_int_equal(ev.items[0].time_ms, 1716976800123LL);
    assert_string_equal(ev.items[0].display_name, "");
    channel_events_free(&ev);

    /* the same event as plain JSON */
    ev = parse_ok(
        &channel_rcs,
        "{'senderPhoneNumber':'+14155550100','messageId':'M2','sendTime':'2024-05-29T10:00:00Z',"
        "'text':'plain'}",
        1);
    expect_message(&ev.items[0], "14155550100", "M2", "{'text_message':{'text':'plain'}}", 1);
    channel_events_free(&ev);

    ev = rcs_env_ok(
        "{'senderPhoneNumber':'+14155550100','messageId':'M3','sendTime':'2024-05-29T10:00:00Z',"
        "'userFile':{'thumbnail':{'mimeType':'image/jpeg','fileSizeBytes':1000,'fileUri':"
        "'https://storage.googleapis.com/copper_test/thumb','fileName':'t.jpg'},'payload':"
        "{'mimeType':'image/gif','fileSizeBytes':127806,'fileUri':"
        "'https://storage.googleapis.com/copper_test/77ddb795','fileName':'4_animated.gif'}}}",
        1);
    expect_message(
        &ev.items[0], "14155550100", "M3",
        "{'media_message':{'url':'https://storage.googleapis.com/copper_test/77ddb795',"
        "'thumbnail_url':'https://storage.googleapis.com/copper_test/thumb','filename_override':"
        "'4_animated.gif'}}",
        1);
    channel_events_free(&ev);

    ev = rcs_env_ok(
        "{'senderPhoneNumber':'+14155550100','messageId':'M4','sendTime':'2024-05-29T10:00:00Z',"
        "'location':{'latitude':37.422,'longitude':-122.0841}}",
        1);
    expect_message(&ev.items[0], "14155550100", "M4",
                   "{'location_message':{'coordinates':{'latitude':37.422,'longitude':-122.0841}}}",
                   1);
    channel_events_free(&ev);

    ev = rcs_env_ok(
        "{'senderPhoneNumber':'+14155550100','messageId':'M5','sendTime':'2024-05-29T10:00:00Z',"
        "'suggestionResponse':{'postbackData':'YES','text':'Yes','type':'REPLY'}}",
        1);
    expect_message(&ev.items[0], "14155550100", "M5",
                   "{'choice_response_message':{'message_id':'','postback_data':'YES'}}", 0);
    channel_events_free(&ev);

    /* newer payloads name the message by eventId */
    ev = parse_ok(&channel_rcs,
                  "{'senderPhoneNumber':'+14155550100','eventId':'E6','text':'Hi','agentId':'a'}",
                  1);
    expect_message(&ev.items[0], "14155550100", "E6", "{'text_message':{'text':'Hi'}}", 1);
    assert_int_equal(ev.items[0].time_ms, 0);
    channel_events_free(&ev);

    ev = parse_ok(&channel_rcs,
                  "{'senderPhoneNumber':'+14155550100','messageId':'M7','sticker':{'id':1}}", 1);
    assert_non_null(json_object_get(ev.items[0].contact_message, "fallback_message"));
    channel_events_free(&ev);
}

static void test_rcs_parse_events(void **state)
{
    (void)state;
    channel_events_t ev =
        rcs_env_ok("{'senderPhoneNumber':'+14155550100','eventType':'DELIVERED',"
                   "'eventId':'MxEv1','messageId':'01HZY8J4K3M2N1P0Q9R8S7T6V5','sendTime':"
                   "'2024-05-29T10:00:02.5Z','agentId':'parley_demo_agent'}",
                   1);
    expect_receipt(&ev.items[0], "14155550100", "01HZY8J4K3M2N1P0Q9R8S7T6V5", "DELIVERED", "");
    assert_int_equal(ev.items[0].time_ms, 1716976802500LL);
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_rcs,
        "{'senderPhoneNumber':'+14155550100','eventType':'READ','eventId':'MxEv2','messageId':"
        "'01HZY8J4K3M2N1P0Q9R8S7T6V5','sendTime':'2024-05-29T10:00:03Z'}",
        1);
    expect_receipt(&ev.items[0], "14155550100", "01HZY8J4K3M2N1P0Q9R8S7T6V5", "READ", "");
    channel_events_free(&ev);
    ev = parse_ok(
        &channel_rcs,
        "{'phoneNumber':'+14155550100','eventType':'TTL_EXPIRATION_REVOKED','eventId':'S1',"
        "'messageId':'01HZY8J4K3M2N1P0Q9R8S7T6V5','agentId':'a','sendTime':'2024-05-29T11:00:00Z'}",
        1);
    expect_receipt(&ev.items[0], "14155550100", "01HZY8J4K3M2N1P0Q9R8S7T6V5", "FAILED",
                   "MESSAGE_EXPIRED");
    channel_events_free(&ev);
    const char *ignored[] = {
        "{'senderPhoneNumber':'+14155550100','eventType':'IS_TYPING','eventId':'E','sendTime':"
        "'2024-05-29T10:00:00Z','agentId':'a'}",
        "{'senderPhoneNumber':'+14155550100','eventType':'UNSUBSCRIBE','eventId':'E','agentId':'a'"
        "}",
        "{'agentId':'a','launchState':'LAUNCHED'}",
        "{'clientToken':'SJENCPGJESMGUFPY','secret':'1234567890'}",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        ev = parse_ok(&channel_rcs, ignored[i], 0);
        channel_events_free(&ev);
    }
    ev =
        rcs_env_ok("{'senderPhoneNumber':'+14155550100','eventType':'IS_TYPING','eventId':'E'}", 0);
    channel_events_free(&ev);
}

static void test_rcs_parse_malformed(void **state)
{
    (void)state;
    parse_bad_raw(&channel_rcs, "", 0, NULL);
    parse_bad_raw(&channel_rcs, "{\"message\":", 11, "invalid JSON");
    parse_bad(&channel_rcs, "'text'", NULL);
    parse_bad(&channel_rcs, "{'message':{'data':'%%% not base64'}}", "base64");
    parse_bad(&channel_rcs, "{'message':{'attributes':{}}}", "message.data");
    parse_bad(&channel_rcs, "{'message':'x'}", "message.data");
    parse_bad(&channel_rcs, "{'message':{'data':'bm90IGpzb24='}}", "not JSON"); /* "not json" */
    parse_bad(&channel_rcs, "{'message':{'data':'WzEsMl0='}}", "object");       /* [1,2] */
    parse_bad(&channel_rcs, "{'senderPhoneNumber':'+1','messageId':'M','text':7}", "text");
    parse_bad(&channel_rcs,
              "{'senderPhoneNumber':'+1','messageId':'M','sendTime':'yesterday','text':'x'}",
              "sendTime");
    parse_bad(&channel_rcs, "{'senderPhoneNumber':'+1','text':'x'}", "messageId");
    parse_bad(&channel_rcs, "{'senderPhoneNumber':'','messageId':'M','text':'x'}",
              "senderPhoneNumber");
    parse_bad(&channel_rcs, "{'senderPhoneNumber':'+1','messageId':'M','userFile':{'payload':{}}}",
              "fileUri");
    parse_bad(&channel_rcs,
              "{'senderPhoneNumber':'+1','messageId':'M','location':{'latitude':'1'}}", "latitude");
    parse_bad(&channel_rcs,
              "{'senderPhoneNumber':'+1','messageId':'M','suggestionResponse':{'text':'Yes'}}",
              "postbackData");
    parse_bad(&channel_rcs, "{'senderPhoneNumber':'+1','eventType':'DELIVERED'}", "messageId");
    parse_bad(&channel_rcs, "{'eventType':'READ','messageId':'M'}", "senderPhoneNumber");
    parse_bad(&channel_rcs, "{'senderPhoneNumber':'+1','eventType':5,'messageId':'M'}",
              "eventType");
}

static int is_uuid4(const char *s)
{
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_rcs_check_transcode(void **state)
{
    (void)state;
    json_t *cred = J(RCS_CRED);
    channel_send_t in = {.base_url = "https://rcsbusinessmessaging.googleapis.com/v1",
                         .credential = cred};
    channel_http_t h = {0}, h2 = {0};
    err_t e = {0};
    assert_int_equal(channel_rcs.check(&in, &h, &e), 0);
    assert_int_equal(channel_rcs.check(&in, &h2, &e), 0);
    assert_string_equal(h.method, "GET");
    assert_null(h.body);
    assert_string_equal(header(&h, "Authorization"), "Bearer ya29.a0AfH6SMBx-token");
    const char *prefix = "https://rcsbusinessmessaging.googleapis.com/v1/phones/+10000000000/"
                         "capabilities?requestId=";
    assert_int_equal(strncmp(h.url, prefix, strlen(prefix)), 0);
    char uuid[37];
    memcpy(uuid, h.url + strlen(prefix), 36);
    uuid[36] = '\0';
    assert_true(is_uuid4(uuid));
    assert_string_equal(h.url + strlen(prefix) + 36, "&agentId=parley_demo_agent");
    assert_string_not_equal(h.url, h2.url); /* a fresh requestId each time */
    channel_http_free(&h);
    channel_http_free(&h2);
    json_decref(cred);
    cred = J("{'claimed_identity':'a'}");
    in.credential = cred;
    assert_int_equal(channel_rcs.check(&in, &h, &e), -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    json_decref(cred);

    char desc[256];
    assert_int_equal(
        check_result(&channel_rcs, 200, "{'features':['RICHCARD_STANDALONE']}", desc, sizeof desc),
        0);
    assert_int_equal(
        check_result(&channel_rcs, 404,
                     "{'error':{'code':404,'message':'Requested entity was not found.',"
                     "'status':'NOT_FOUND'}}",
                     desc, sizeof desc),
        0);
    assert_int_equal(
        check_result(&channel_rcs, 401,
                     "{'error':{'code':401,'message':'Request had invalid authentication "
                     "credentials.','status':'UNAUTHENTICATED'}}",
                     desc, sizeof desc),
        -1);
    assert_string_equal(desc, "RBM rejected the agent or token (HTTP 401): Request had invalid "
                              "authentication credentials.");
    assert_int_equal(check_result(&channel_rcs, 403, NULL, desc, sizeof desc), -1);
    assert_string_equal(desc, "RBM rejected the agent or token (HTTP 403): no details");
    assert_int_equal(check_result(&channel_rcs, 500, NULL, desc, sizeof desc), -1);
    assert_int_equal(check_result(&channel_rcs, 0, NULL, desc, sizeof desc), -1);
    assert_string_equal(desc, "no answer from RBM");

    expect_transcode(&channel_rcs,
                     "{'choice_message':{'text_message':{'text':'Q'},'choices':[{'text_message':{'"
                     "text':'A'}}]}}",
                     "{'contentMessage':{'text':'Q','suggestions':[{'reply':{'text':'A','"
                     "postbackData':'A'}}]}}");
    json_t *m = J("{'template_message':{'omni_template':{'template_id':'t','version':'1'}}}");
    assert_null(channel_rcs.transcode(m, &e));
    json_decref(m);
}

int main(void)
{
    if (sec_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tg_descriptor),
        cmocka_unit_test(test_tg_send_text),
        cmocka_unit_test(test_tg_send_media),
        cmocka_unit_test(test_tg_send_choice),
        cmocka_unit_test(test_tg_callback_data_limit),
        cmocka_unit_test(test_tg_send_card),
        cmocka_unit_test(test_tg_send_carousel),
        cmocka_unit_test(test_tg_send_location_contact),
        cmocka_unit_test(test_tg_send_list),
        cmocka_unit_test(test_tg_send_explicit),
        cmocka_unit_test(test_tg_send_errors),
        cmocka_unit_test(test_tg_send_result),
        cmocka_unit_test(test_tg_verify),
        cmocka_unit_test(test_tg_parse_messages),
        cmocka_unit_test(test_tg_parse_callback_and_ignored),
        cmocka_unit_test(test_tg_parse_malformed),
        cmocka_unit_test(test_tg_check),
        cmocka_unit_test(test_tg_set_webhook),
        cmocka_unit_test(test_tg_transcode),
        cmocka_unit_test(test_vb_descriptor),
        cmocka_unit_test(test_vb_send_text),
        cmocka_unit_test(test_vb_send_media),
        cmocka_unit_test(test_vb_send_choice),
        cmocka_unit_test(test_vb_send_card_carousel),
        cmocka_unit_test(test_vb_send_location_contact_list),
        cmocka_unit_test(test_vb_send_errors_and_explicit),
        cmocka_unit_test(test_vb_send_result),
        cmocka_unit_test(test_vb_verify),
        cmocka_unit_test(test_vb_parse_messages),
        cmocka_unit_test(test_vb_parse_receipts_and_ignored),
        cmocka_unit_test(test_vb_parse_malformed),
        cmocka_unit_test(test_vb_check_transcode),
        cmocka_unit_test(test_rcs_descriptor),
        cmocka_unit_test(test_rcs_send_text_media),
        cmocka_unit_test(test_rcs_send_choice),
        cmocka_unit_test(test_rcs_send_cards),
        cmocka_unit_test(test_rcs_send_location_contact_list),
        cmocka_unit_test(test_rcs_send_errors_and_explicit),
        cmocka_unit_test(test_rcs_send_result),
        cmocka_unit_test(test_rcs_verify),
        cmocka_unit_test(test_rcs_handshake),
        cmocka_unit_test(test_rcs_parse_messages),
        cmocka_unit_test(test_rcs_parse_events),
        cmocka_unit_test(test_rcs_parse_malformed),
        cmocka_unit_test(test_rcs_check_transcode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
