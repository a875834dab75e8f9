/* test_channel_meta.c: the Meta adapters (channels/whatsapp.c, messenger.c, instagram.c and
 * the shared channels/meta.c) byte for byte against the providers' documented formats:
 * request bodies for every AppMessage type, length limits, send results, signatures, the
 * hub.challenge handshake, every inbound kind, malformed payloads, and the credential
 * check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/sec.h"
#include "channels/channel.h"
#include "channels/meta.h"
#include "base/utf8.h"
#include "channels/render.h"
#include "convo/messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const channel_t channel_whatsapp, channel_messenger, channel_instagram;

#define WA (&channel_whatsapp)
#define MS (&channel_messenger)
#define IG (&channel_instagram)

#define BASE    "http://127.0.0.1:8999/graph/v19.0"
#define WA_CRED "{\"claimed_identity\":\"106540352242922\",\"token\":\"EAAG-wa-token\"}"
#define MS_CRED "{\"token\":\"EAAB page/token+1\"}"
#define IG_CRED "{\"token\":\"IGQW-token\"}"
#define WA_TO   "46701234567"
#define PSID    "5512345678901234"
#define IGSID   "6723456789012345"

#define WA_URL BASE "/106540352242922/messages"
#define MS_URL BASE "/me/messages?access_token=EAAB%20page%2Ftoken%2B1"
#define IG_URL BASE "/me/messages"
#define WA_PREFIX                                                                                  \
    "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"" WA_TO "\","
#define MS_PREFIX                                                                                  \
    "{\"recipient\":{\"id\":\"" PSID "\"},\"messaging_type\":\"RESPONSE\",\"message\":"
#define IG_PREFIX "{\"recipient\":{\"id\":\"" IGSID "\"},\"message\":"

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" to contain \"%s\"", (hay), (needle));                        \
    } while (0)

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v) fail_msg("bad test JSON (%s): %s", je.text, text);
    return v;
}

static char *dumps(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

/* ---- outbound helpers ---- */

static const char *cred_for(const channel_t *ch)
{
    return ch == WA ? WA_CRED : ch == MS ? MS_CRED : IG_CRED;
}

static const char *to_for(const channel_t *ch)
{
    return ch == WA ? WA_TO : ch == MS ? PSID : IGSID;
}

/* Build the request for app (JSON) with props (JSON or NULL); -1 with e on error. */
static int build(const channel_t *ch, const char *cred, const char *app, const char *props,
                 const char *base, channel_http_t *h, err_t *e)
{
    json_t *c = J(cred), *m = J(app), *p = props ? J(props) : NULL;
    channel_send_t in = {.base_url = base,
                         .credential = c,
                         .recipient = to_for(ch),
                         .app_message = m,
                         .channel_properties = p,
                         .message_id = "01HZZZZZZZZZZZZZZZZZZZZZZZ"};
    memset(h, 0, sizeof *h);
    int rc = ch->send(&in, h, e);
    json_decref(c);
    json_decref(m);
    json_decref(p);
    return rc;
}

static void expect_send_props(const channel_t *ch, const char *app, const char *props,
                              const char *url, const char *body)
{
    channel_http_t h;
    err_t e = {0};
    if (build(ch, cred_for(ch), app, props, BASE, &h, &e) != 0)
        fail_msg("%s send of %s failed: %s", ch->name, app, e.message);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.url, url);
    assert_string_equal(h.headers[0], "Content-Type: application/json");
    if (ch == MS) {
        assert_null(h.headers[1]);
    } else {
        assert_string_equal(h.headers[1], ch == WA ? "Authorization: Bearer EAAG-wa-token"
                                                   : "Authorization: Bearer IGQW-token");
        assert_null(h.headers[2]);
    }
    assert_non_null(h.body);
    assert_string_equal(h.body, body);
    assert_int_equal(h.body_len, strlen(body));
    channel_http_free(&h);
}

/* The request body for app must be exactly prefix + message + "}". */
static void expect_msg(const channel_t *ch, const char *app, const char *message)
{
    char body[16384];
    const char *prefix = ch == WA ? WA_PREFIX : ch == MS ? MS_PREFIX : IG_PREFIX;
    const char *url = ch == WA ? WA_URL : ch == MS ? MS_URL : IG_URL;
    snprintf(body, sizeof body, "%s%s}", prefix, message);
    expect_send_props(ch, app, NULL, url, body);

    /* transcode returns the message part alone (WhatsApp: the body without "to") */
    err_t e = {0};
    json_t *m = J(app);
    json_t *t = ch->transcode(m, &e);
    if (!t) fail_msg("transcode of %s failed: %s", app, e.message);
    char *s = dumps(t);
    char want[16384];
    if (ch == WA)
        snprintf(want, sizeof want,
                 "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",%s}",
                 message);
    else
        snprintf(want, sizeof want, "%s", message);
    assert_string_equal(s, want);
    free(s);
    json_decref(t);
    json_decref(m);
}

static void expect_send_error(const channel_t *ch, const char *app, const char *props,
                              err_code_t code, const char *needle)
{
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(build(ch, cred_for(ch), app, props, BASE, &h, &e), -1);
    assert_int_equal(e.code, code);
    assert_contains(e.message, needle);
    assert_null(h.url);
    assert_null(h.body);
    channel_http_free(&h);
}

/* The JSON string literal of channel_render_text(app) (the shared text fallback). */
static char *render_json(const char *app)
{
    err_t e = {0};
    json_t *m = J(app);
    char *t = channel_render_text(m, &e);
    if (!t) fail_msg("render of %s failed: %s", app, e.message);
    json_t *s = json_string(t);
    char *out = dumps(s);
    json_decref(s);
    json_decref(m);
    free(t);
    return out;
}

/* The fallback body: WhatsApp {"type":"text","text":{"body":R}}, Messenger/Instagram
 * {"text":R}. */
static void expect_fallback(const channel_t *ch, const char *app)
{
    char *r = render_json(app);
    char msg[8192];
    if (ch == WA)
        snprintf(msg, sizeof msg, "\"type\":\"text\",\"text\":{\"body\":%s}", r);
    else
        snprintf(msg, sizeof msg, "{\"text\":%s}", r);
    expect_msg(ch, app, msg);
    free(r);
}

/* {"text_message":{"text":"<n copies of unit>"}} (malloc'd) */
static char *text_app(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 64);
    char *p = s + sprintf(s, "{\"text_message\":{\"text\":\"");
    for (size_t i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    strcpy(p, "\"}}");
    return s;
}

/* ---- shared message fixtures ---- */

#define APP_TEXT  "{\"text_message\":{\"text\":\"Hello there\"}}"
#define APP_IMAGE "{\"media_message\":{\"url\":\"https://cdn.example.com/pics/cat.JPG?sig=1\"}}"
#define APP_VIDEO "{\"media_message\":{\"url\":\"https://cdn.example.com/clip.mp4\"}}"
#define APP_AUDIO "{\"media_message\":{\"url\":\"https://cdn.example.com/voice.ogg\"}}"
#define APP_PDF   "{\"media_message\":{\"url\":\"https://cdn.example.com/files/report.pdf\"}}"
#define APP_CHOICE_TEXT                                                                            \
    "{\"choice_message\":{\"text_message\":{\"text\":\"Pick one\"},\"choices\":["                  \
    "{\"text_message\":{\"text\":\"Yes\"},\"postback_data\":\"yes\"},"                             \
    "{\"text_message\":{\"text\":\"No\"}}],"                                                       \
    "\"message_properties\":{\"whatsapp_footer\":\"Reply below\"}}}"
#define APP_CHOICE_MIXED                                                                           \
    "{\"choice_message\":{\"text_message\":{\"text\":\"How can we help?\"},\"choices\":["          \
    "{\"text_message\":{\"text\":\"Talk to us\"},\"postback_data\":\"talk\"},"                     \
    "{\"url_message\":{\"title\":\"Help center\",\"url\":\"https://example.com/help\"}},"          \
    "{\"call_message\":{\"title\":\"Call us\",\"phone_number\":\"+46701234567\"}}]}}"
#define APP_CARD                                                                                   \
    "{\"card_message\":{\"title\":\"Blue shoes\",\"description\":\"Size 42, 79 EUR\","             \
    "\"media_message\":{\"url\":\"https://cdn.example.com/shoes.png\"},\"choices\":["              \
    "{\"text_message\":{\"text\":\"Buy\"},\"postback_data\":\"buy-42\"},"                          \
    "{\"text_message\":{\"text\":\"Later\"}}]}}"
#define APP_CARD_URL                                                                               \
    "{\"card_message\":{\"title\":\"Blue shoes\",\"description\":\"Size 42, 79 EUR\","             \
    "\"media_message\":{\"url\":\"https://cdn.example.com/shoes.png\"},\"choices\":["              \
    "{\"text_message\":{\"text\":\"Buy\"},\"postback_data\":\"buy-42\"},"                          \
    "{\"url_message\":{\"title\":\"Details\",\"url\":\"https://shop.example.com/42\"}}]}}"
#define APP_CAROUSEL                                                                               \
    "{\"carousel_message\":{\"cards\":["                                                           \
    "{\"title\":\"Red\",\"media_message\":{\"url\":\"https://cdn.example.com/red.png\"}},"         \
    "{\"title\":\"Blue\",\"description\":\"Navy\"}],"                                              \
    "\"choices\":[{\"text_message\":{\"text\":\"More\"},\"postback_data\":\"more\"}]}}"
#define APP_LOCATION                                                                               \
    "{\"location_message\":{\"title\":\"Head office\",\"label\":\"Main St 1\","                    \
    "\"coordinates\":{\"latitude\":59.3293,\"longitude\":18.0686}}}"
#define APP_CONTACT                                                                                \
    "{\"contact_info_message\":{\"name\":{\"full_name\":\"Ada Lovelace\",\"first_name\":\"Ada\","  \
    "\"last_name\":\"Lovelace\"},\"phone_numbers\":[{\"phone_number\":\"+44123456\","              \
    "\"type\":\"WORK\"}],\"email_addresses\":[{\"email_address\":\"ada@example.com\"}],"           \
    "\"urls\":[{\"url\":\"https://ada.example.com\"}],\"addresses\":[{\"city\":\"London\","        \
    "\"country\":\"United Kingdom\",\"country_code\":\"GB\",\"type\":\"HOME\"}],"                  \
    "\"organization\":{\"company\":\"Analytical Engines\"},\"birthday\":\"1815-12-10\"}}"
#define APP_LIST                                                                                   \
    "{\"list_message\":{\"title\":\"Our menu\",\"description\":\"Pick a dish\",\"sections\":["     \
    "{\"title\":\"Mains\",\"items\":[{\"choice\":{\"title\":\"Pasta\",\"description\":"            \
    "\"With basil\",\"postback_data\":\"pasta\"}},{\"choice\":{\"title\":\"Soup\"}}]},"            \
    "{\"title\":\"Desserts\",\"items\":[{\"choice\":{\"title\":\"Cake\"}}]}],"                     \
    "\"message_properties\":{\"menu\":\"See dishes\",\"whatsapp_header\":\"Lunch\"}}}"
#define APP_TEMPLATE                                                                               \
    "{\"template_message\":{\"channel_template\":{\"WHATSAPP\":{\"template_id\":"                  \
    "\"order_update\",\"language_code\":\"en_US\",\"parameters\":{\"2\":\"shipped\","              \
    "\"1\":\"Ada\",\"header[1]text\":\"Order 42\",\"button[0]url\":\"track/42\"}}}}}"

/* ================= WhatsApp outbound ================= */

static void test_wa_text(void **state)
{
    (void)state;
    expect_msg(WA, APP_TEXT, "\"type\":\"text\",\"text\":{\"body\":\"Hello there\"}");
    /* JSON escapes and UTF-8 pass through unchanged */
    expect_msg(WA, "{\"text_message\":{\"text\":\"Hej \\\"d\\u00e5\\\"\\nrad 2 / \\u2713\"}}",
               "\"type\":\"text\",\"text\":{\"body\":\"Hej \\\"d\xc3\xa5\\\"\\nrad 2 / "
               "\xe2\x9c\x93\"}");
}

static void test_wa_media(void **state)
{
    (void)state;
    expect_msg(
        WA, APP_IMAGE,
        "\"type\":\"image\",\"image\":{\"link\":\"https://cdn.example.com/pics/cat.JPG?sig=1\"}");
    expect_msg(WA, APP_VIDEO,
               "\"type\":\"video\",\"video\":{\"link\":\"https://cdn.example.com/clip.mp4\"}");
    expect_msg(WA, APP_AUDIO,
               "\"type\":\"audio\",\"audio\":{\"link\":\"https://cdn.example.com/voice.ogg\"}");
    expect_msg(WA, APP_PDF,
               "\"type\":\"document\",\"document\":{\"link\":\"https://cdn.example.com/files/"
               "report.pdf\",\"filename\":\"report.pdf\"}");
    /* filename_override names the document; unknown extensions are documents */
    expect_msg(WA,
               "{\"media_message\":{\"url\":\"https://cdn.example.com/x/archive.zip\","
               "\"filename_override\":\"Q3 numbers.zip\"}}",
               "\"type\":\"document\",\"document\":{\"link\":\"https://cdn.example.com/x/"
               "archive.zip\",\"filename\":\"Q3 numbers.zip\"}");
    /* no extension in the URL: the override's extension decides */
    expect_msg(WA,
               "{\"media_message\":{\"url\":\"https://cdn.example.com/media/123\","
               "\"filename_override\":\"photo.png\"}}",
               "\"type\":\"image\",\"image\":{\"link\":\"https://cdn.example.com/media/123\"}");
    /* WebP is not a Cloud API image type (JPEG and PNG only) but its sticker format */
    expect_msg(
        WA, "{\"media_message\":{\"url\":\"https://cdn.example.com/s/Smile.WEBP?v=2\"}}",
        "\"type\":\"sticker\",\"sticker\":{\"link\":\"https://cdn.example.com/s/Smile.WEBP?v=2\"}");
    expect_msg(WA,
               "{\"media_message\":{\"url\":\"https://cdn.example.com/media/124\","
               "\"filename_override\":\"smile.webp\"}}",
               "\"type\":\"sticker\",\"sticker\":{\"link\":\"https://cdn.example.com/media/124\"}");
    /* Messenger and Instagram keep WebP as an image */
    expect_msg(MS, "{\"media_message\":{\"url\":\"https://cdn.example.com/s/smile.webp\"}}",
               "{\"attachment\":{\"type\":\"image\",\"payload\":{\"url\":"
               "\"https://cdn.example.com/s/smile.webp\"}}}");
}

static void test_wa_choice_buttons(void **state)
{
    (void)state;
    expect_msg(WA, APP_CHOICE_TEXT,
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":"
               "\"Pick one\"},\"footer\":{\"text\":\"Reply below\"},\"action\":{\"buttons\":["
               "{\"type\":\"reply\",\"reply\":{\"id\":\"yes\",\"title\":\"Yes\"}},"
               "{\"type\":\"reply\",\"reply\":{\"id\":\"No\",\"title\":\"No\"}}]}}");
}

static void test_wa_choice_list(void **state)
{
    (void)state;
    /* four text choices: an interactive list */
    expect_msg(WA,
               "{\"choice_message\":{\"text_message\":{\"text\":\"Pick a size\"},\"choices\":["
               "{\"text_message\":{\"text\":\"Small\"},\"postback_data\":\"S\"},"
               "{\"text_message\":{\"text\":\"Medium\"},\"postback_data\":\"M\"},"
               "{\"text_message\":{\"text\":\"Large\"},\"postback_data\":\"L\"},"
               "{\"text_message\":{\"text\":\"Extra large\"},\"postback_data\":\"XL\"}]}}",
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"body\":{\"text\":"
               "\"Pick a size\"},\"action\":{\"button\":\"Choose\",\"sections\":[{\"rows\":["
               "{\"id\":\"S\",\"title\":\"Small\"},{\"id\":\"M\",\"title\":\"Medium\"},"
               "{\"id\":\"L\",\"title\":\"Large\"},{\"id\":\"XL\",\"title\":\"Extra large\"}]}]}}");
    /* two choices, but one title is over the 20-character button limit: a list */
    expect_msg(WA,
               "{\"choice_message\":{\"text_message\":{\"text\":\"When?\"},\"choices\":["
               "{\"text_message\":{\"text\":\"Tomorrow morning 9am\"}},"
               "{\"text_message\":{\"text\":\"Tomorrow afternoon 3pm\"}}]}}",
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"body\":{\"text\":"
               "\"When?\"},\"action\":{\"button\":\"Choose\",\"sections\":[{\"rows\":["
               "{\"id\":\"Tomorrow morning 9am\",\"title\":\"Tomorrow morning 9am\"},"
               "{\"id\":\"Tomorrow afternoon 3pm\",\"title\":\"Tomorrow afternoon 3pm\"}]}]}}");
}

static void test_wa_choice_fallbacks(void **state)
{
    (void)state;
    /* url and call choices have no reply-button form */
    expect_fallback(WA, APP_CHOICE_MIXED);
    /* no body text: interactive messages need one */
    expect_fallback(WA, "{\"choice_message\":{\"choices\":[{\"text_message\":{\"text\":\"A\"}}]}}");
    /* a row title over 24 characters fits neither buttons nor a list */
    expect_fallback(WA,
                    "{\"choice_message\":{\"text_message\":{\"text\":\"Q\"},\"choices\":["
                    "{\"text_message\":{\"text\":\"This title is far too long for a row\"}}]}}");
    /* the footer is WhatsApp's own field: over 60 characters is an error */
    expect_send_error(WA,
                      "{\"choice_message\":{\"text_message\":{\"text\":\"Q\"},\"choices\":["
                      "{\"text_message\":{\"text\":\"A\"}}],\"message_properties\":"
                      "{\"whatsapp_footer\":\"0123456789012345678901234567890123456789012345678901"
                      "234567890\"}}}",
                      NULL, ERR_INVALID_ARGUMENT, "at most 60");
}

static void test_wa_card(void **state)
{
    (void)state;
    expect_msg(WA, APP_CARD,
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"header\":{\"type\":"
               "\"image\",\"image\":{\"link\":\"https://cdn.example.com/shoes.png\"}},\"body\":{"
               "\"text\":\"Blue shoes\\nSize 42, 79 EUR\"},\"action\":{\"buttons\":["
               "{\"type\":\"reply\",\"reply\":{\"id\":\"buy-42\",\"title\":\"Buy\"}},"
               "{\"type\":\"reply\",\"reply\":{\"id\":\"Later\",\"title\":\"Later\"}}]}}");
    /* no choices: a captioned image */
    expect_msg(WA,
               "{\"card_message\":{\"title\":\"Blue shoes\",\"description\":\"Size 42\","
               "\"media_message\":{\"url\":\"https://cdn.example.com/shoes.png\"}}}",
               "\"type\":\"image\",\"image\":{\"link\":\"https://cdn.example.com/shoes.png\","
               "\"caption\":\"Blue shoes\\nSize 42\"}");
    /* no media: text header from message_properties.whatsapp_header */
    expect_msg(WA,
               "{\"card_message\":{\"title\":\"Offer\",\"choices\":[{\"text_message\":{\"text\":"
               "\"OK\"}}],\"message_properties\":{\"whatsapp_header\":\"Today only\"}}}",
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"header\":{\"type\":"
               "\"text\",\"text\":\"Today only\"},\"body\":{\"text\":\"Offer\"},\"action\":{"
               "\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"OK\",\"title\":\"OK\"}}]}}");
    /* text only */
    expect_msg(WA, "{\"card_message\":{\"title\":\"Just words\"}}",
               "\"type\":\"text\",\"text\":{\"body\":\"Just words\"}");
    /* a url choice has no reply-button form: the card goes as text */
    expect_fallback(WA, APP_CARD_URL);
    /* a sticker takes no caption and cannot head buttons: text; alone it is a sticker */
    expect_fallback(WA, "{\"card_message\":{\"title\":\"Hi\",\"media_message\":{\"url\":"
                        "\"https://cdn.example.com/s.webp\"}}}");
    expect_fallback(WA, "{\"card_message\":{\"title\":\"Hi\",\"media_message\":{\"url\":"
                        "\"https://cdn.example.com/s.webp\"},\"choices\":[{\"text_message\":"
                        "{\"text\":\"OK\"}}]}}");
    expect_msg(
        WA, "{\"card_message\":{\"media_message\":{\"url\":\"https://cdn.example.com/s.webp\"}}}",
        "\"type\":\"sticker\",\"sticker\":{\"link\":\"https://cdn.example.com/s.webp\"}");
}

static void test_wa_carousel(void **state)
{
    (void)state;
    expect_fallback(WA, APP_CAROUSEL);
}

static void test_wa_location(void **state)
{
    (void)state;
    expect_msg(WA, APP_LOCATION,
               "\"type\":\"location\",\"location\":{\"latitude\":59.3293,\"longitude\":18.0686,"
               "\"name\":\"Head office\",\"address\":\"Main St 1\"}");
    expect_msg(WA,
               "{\"location_message\":{\"title\":\"Pin\",\"coordinates\":{\"latitude\":-33,"
               "\"longitude\":151.2}}}",
               "\"type\":\"location\",\"location\":{\"latitude\":-33,\"longitude\":151.2,"
               "\"name\":\"Pin\"}");
}

static void test_wa_contacts(void **state)
{
    (void)state;
    expect_msg(WA, APP_CONTACT,
               "\"type\":\"contacts\",\"contacts\":[{\"name\":{\"formatted_name\":\"Ada Lovelace\","
               "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"},\"phones\":[{\"phone\":"
               "\"+44123456\",\"type\":\"WORK\"}],\"emails\":[{\"email\":\"ada@example.com\"}],"
               "\"urls\":[{\"url\":\"https://ada.example.com\"}],\"addresses\":[{\"city\":"
               "\"London\",\"country\":\"United Kingdom\",\"country_code\":\"GB\",\"type\":"
               "\"HOME\"}],\"org\":{\"company\":\"Analytical Engines\"},\"birthday\":"
               "\"1815-12-10\"}]");
    /* WhatsApp needs a name part besides formatted_name */
    expect_msg(WA,
               "{\"contact_info_message\":{\"name\":{\"full_name\":\"Support\"},"
               "\"phone_numbers\":[{\"phone_number\":\"+4610000\"}]}}",
               "\"type\":\"contacts\",\"contacts\":[{\"name\":{\"formatted_name\":\"Support\","
               "\"first_name\":\"Support\"},\"phones\":[{\"phone\":\"+4610000\"}]}]");
}

static void test_wa_list(void **state)
{
    (void)state;
    expect_msg(WA, APP_LIST,
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"header\":{\"type\":"
               "\"text\",\"text\":\"Lunch\"},\"body\":{\"text\":\"Our menu\\nPick a dish\"},"
               "\"action\":{\"button\":\"See dishes\",\"sections\":[{\"title\":\"Mains\",\"rows\":["
               "{\"id\":\"pasta\",\"title\":\"Pasta\",\"description\":\"With basil\"},"
               "{\"id\":\"Soup\",\"title\":\"Soup\"}]},{\"title\":\"Desserts\",\"rows\":["
               "{\"id\":\"Cake\",\"title\":\"Cake\"}]}]}}");
    /* products: a multi-product message from the catalog */
    expect_msg(WA,
               "{\"list_message\":{\"title\":\"Deals\",\"sections\":[{\"title\":\"Shoes\","
               "\"items\":[{\"product\":{\"id\":\"sku-1\",\"marketplace\":\"FACEBOOK\"}},"
               "{\"product\":{\"id\":\"sku-2\",\"marketplace\":\"FACEBOOK\"}}]}],"
               "\"message_properties\":{\"catalog_id\":\"cat-77\"}}}",
               "\"type\":\"interactive\",\"interactive\":{\"type\":\"product_list\",\"header\":{"
               "\"type\":\"text\",\"text\":\"Deals\"},\"body\":{\"text\":\"Deals\"},\"action\":{"
               "\"catalog_id\":\"cat-77\",\"sections\":[{\"title\":\"Shoes\",\"product_items\":["
               "{\"product_retailer_id\":\"sku-1\"},{\"product_retailer_id\":\"sku-2\"}]}]}}");
    expect_send_error(WA,
                      "{\"list_message\":{\"title\":\"Deals\",\"sections\":[{\"items\":["
                      "{\"product\":{\"id\":\"sku-1\",\"marketplace\":\"FACEBOOK\"}}]}]}}",
                      NULL, ERR_INVALID_ARGUMENT, "catalog_id");
    expect_send_error(WA,
                      "{\"list_message\":{\"title\":\"Mixed\",\"sections\":[{\"items\":["
                      "{\"product\":{\"id\":\"sku-1\",\"marketplace\":\"FACEBOOK\"}},"
                      "{\"choice\":{\"title\":\"A\"}}]}],\"message_properties\":{\"catalog_id\":"
                      "\"c\"}}}",
                      NULL, ERR_INVALID_ARGUMENT, "mixes");
    /* eleven rows: over the 10-row limit, the list goes as text */
    expect_fallback(WA, "{\"list_message\":{\"title\":\"Many\",\"sections\":[{\"items\":["
                        "{\"choice\":{\"title\":\"1\"}},{\"choice\":{\"title\":\"2\"}},"
                        "{\"choice\":{\"title\":\"3\"}},{\"choice\":{\"title\":\"4\"}},"
                        "{\"choice\":{\"title\":\"5\"}},{\"choice\":{\"title\":\"6\"}},"
                        "{\"choice\":{\"title\":\"7\"}},{\"choice\":{\"title\":\"8\"}},"
                        "{\"choice\":{\"title\":\"9\"}},{\"choice\":{\"title\":\"10\"}},"
                        "{\"choice\":{\"title\":\"11\"}}]}]}}");
    /* several sections need titles */
    expect_fallback(WA, "{\"list_message\":{\"title\":\"T\",\"sections\":["
                        "{\"items\":[{\"choice\":{\"title\":\"a\"}}]},"
                        "{\"items\":[{\"choice\":{\"title\":\"b\"}}]}]}}");
}

static void test_wa_template(void **state)
{
    (void)state;
    expect_msg(WA, APP_TEMPLATE,
               "\"type\":\"template\",\"template\":{\"name\":\"order_update\",\"language\":{"
               "\"code\":\"en_US\"},\"components\":[{\"type\":\"header\",\"parameters\":["
               "{\"type\":\"text\",\"text\":\"Order 42\"}]},{\"type\":\"body\",\"parameters\":["
               "{\"type\":\"text\",\"text\":\"Ada\"},{\"type\":\"text\",\"text\":\"shipped\"}]},"
               "{\"type\":\"button\",\"sub_type\":\"url\",\"index\":\"0\",\"parameters\":["
               "{\"type\":\"text\",\"text\":\"track/42\"}]}]}");
    /* omni_template, no parameters */
    expect_msg(WA,
               "{\"template_message\":{\"omni_template\":{\"template_id\":\"welcome\","
               "\"version\":\"1\",\"language_code\":\"sv\"}}}",
               "\"type\":\"template\",\"template\":{\"name\":\"welcome\",\"language\":{\"code\":"
               "\"sv\"}}");
    /* named parameters, body[N]text, header media and quick-reply payloads */
    expect_msg(WA,
               "{\"template_message\":{\"channel_template\":{\"WHATSAPP\":{\"template_id\":"
               "\"promo\",\"language_code\":\"en\",\"parameters\":{\"first_name\":\"Ada\","
               "\"header[1]image\":\"https://cdn.example.com/h.png\",\"button[1]payload\":"
               "\"STOP\"}}}}}",
               "\"type\":\"template\",\"template\":{\"name\":\"promo\",\"language\":{\"code\":"
               "\"en\"},\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"image\","
               "\"image\":{\"link\":\"https://cdn.example.com/h.png\"}}]},{\"type\":\"body\","
               "\"parameters\":[{\"type\":\"text\",\"parameter_name\":\"first_name\",\"text\":"
               "\"Ada\"}]},{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":\"1\","
               "\"parameters\":[{\"type\":\"payload\",\"payload\":\"STOP\"}]}]}");
    /* channel_template.WHATSAPP wins over omni_template */
    expect_msg(WA,
               "{\"template_message\":{\"omni_template\":{\"template_id\":\"omni\",\"version\":"
               "\"1\",\"language_code\":\"en\"},\"channel_template\":{\"WHATSAPP\":{"
               "\"template_id\":\"wa_name\",\"language_code\":\"de\",\"parameters\":{"
               "\"body[2]text\":\"b\",\"body[1]text\":\"a\"}}}}}",
               "\"type\":\"template\",\"template\":{\"name\":\"wa_name\",\"language\":{\"code\":"
               "\"de\"},\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
               "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}");
    expect_send_error(WA,
                      "{\"template_message\":{\"omni_template\":{\"template_id\":\"welcome\","
                      "\"version\":\"1\"}}}",
                      NULL, ERR_INVALID_ARGUMENT, "language_code");
    expect_send_error(WA,
                      "{\"template_message\":{\"channel_template\":{\"MESSENGER\":{"
                      "\"template_id\":\"x\"}}}}",
                      NULL, ERR_INVALID_ARGUMENT, "channel_template.WHATSAPP or omni_template");
}

static void test_wa_limits(void **state)
{
    (void)state;
    char *ok = text_app("a", 4096), *over = text_app("a", 4097);
    char *uni = text_app("\xc3\xa5", 4096), *uni_over = text_app("\xc3\xa5", 4097);
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(build(WA, WA_CRED, ok, NULL, BASE, &h, &e), 0);
    channel_http_free(&h);
    /* limits count characters, not bytes */
    assert_int_equal(build(WA, WA_CRED, uni, NULL, BASE, &h, &e), 0);
    channel_http_free(&h);
    expect_send_error(WA, over, NULL, ERR_INVALID_ARGUMENT, "WhatsApp allows at most 4096");
    expect_send_error(WA, uni_over, NULL, ERR_INVALID_ARGUMENT, "4097 characters");
    free(ok);
    free(over);
    free(uni);
    free(uni_over);
    /* the text form of a fallback obeys the same limit */
    char big[4400];
    memset(big, 'x', 4100);
    big[4100] = '\0';
    char app[4600];
    snprintf(app, sizeof app,
             "{\"carousel_message\":{\"cards\":[{\"title\":\"a\",\"description\":\"%s\"}]}}", big);
    expect_send_error(WA, app, NULL, ERR_INVALID_ARGUMENT, "text form of this carousel_message");
}

static void test_wa_credentials_and_base(void **state)
{
    (void)state;
    channel_http_t h;
    err_t e = {0};
    /* default base URL when none is configured; trailing slashes are dropped */
    assert_int_equal(build(WA, WA_CRED, APP_TEXT, NULL, NULL, &h, &e), 0);
    assert_string_equal(h.url, "https://graph.facebook.com/v19.0/106540352242922/messages");
    channel_http_free(&h);
    assert_int_equal(build(WA, WA_CRED, APP_TEXT, NULL, BASE "//", &h, &e), 0);
    assert_string_equal(h.url, WA_URL);
    channel_http_free(&h);
    /* the wrapped credential form is accepted too */
    assert_int_equal(build(WA, "{\"static_bearer\":" WA_CRED "}", APP_TEXT, NULL, BASE, &h, &e), 0);
    assert_string_equal(h.url, WA_URL);
    channel_http_free(&h);
    /* the phone number id is one path segment */
    assert_int_equal(
        build(WA, "{\"claimed_identity\":\"1/2?x\",\"token\":\"t\"}", APP_TEXT, NULL, BASE, &h, &e),
        0);
    assert_string_equal(h.url, BASE "/1%2F2%3Fx/messages");
    channel_http_free(&h);
    assert_int_equal(build(WA, "{\"token\":\"t\"}", APP_TEXT, NULL, BASE, &h, &e), -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    assert_contains(e.message, "claimed_identity");
    assert_int_equal(build(WA, "{\"claimed_identity\":\"1\"}", APP_TEXT, NULL, BASE, &h, &e), -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    assert_contains(e.message, "token");
    /* a token that could split the header line is refused */
    assert_int_equal(build(WA, "{\"claimed_identity\":\"1\",\"token\":\"a\\r\\nX-Evil: 1\"}",
                           APP_TEXT, NULL, BASE, &h, &e),
                     -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    assert_int_equal(build(WA, "[]", APP_TEXT, NULL, BASE, &h, &e), -1);
    channel_http_free(&h);
}

/* ================= Messenger outbound ================= */

static void test_ms_text_and_media(void **state)
{
    (void)state;
    expect_msg(MS, APP_TEXT, "{\"text\":\"Hello there\"}");
    expect_msg(MS, APP_IMAGE,
               "{\"attachment\":{\"type\":\"image\",\"payload\":{\"url\":\"https://cdn.example.com/"
               "pics/cat.JPG?sig=1\"}}}");
    expect_msg(MS, APP_VIDEO,
               "{\"attachment\":{\"type\":\"video\",\"payload\":{\"url\":\"https://cdn.example.com/"
               "clip.mp4\"}}}");
    expect_msg(MS, APP_AUDIO,
               "{\"attachment\":{\"type\":\"audio\",\"payload\":{\"url\":\"https://cdn.example.com/"
               "voice.ogg\"}}}");
    expect_msg(MS, APP_PDF,
               "{\"attachment\":{\"type\":\"file\",\"payload\":{\"url\":\"https://cdn.example.com/"
               "files/report.pdf\"}}}");
}

static void test_ms_choice(void **state)
{
    (void)state;
    /* text choices: quick replies (payload = postback_data, else the title) */
    expect_msg(MS, APP_CHOICE_TEXT,
               "{\"text\":\"Pick one\",\"quick_replies\":[{\"content_type\":\"text\",\"title\":"
               "\"Yes\",\"payload\":\"yes\"},{\"content_type\":\"text\",\"title\":\"No\","
               "\"payload\":\"No\"}]}");
    /* text, url and call choices: the button template */
    expect_msg(MS, APP_CHOICE_MIXED,
               "{\"attachment\":{\"type\":\"template\",\"payload\":{\"template_type\":\"button\","
               "\"text\":\"How can we help?\",\"buttons\":[{\"type\":\"postback\",\"title\":"
               "\"Talk to us\",\"payload\":\"talk\"},{\"type\":\"web_url\",\"url\":"
               "\"https://example.com/help\",\"title\":\"Help center\"},{\"type\":"
               "\"phone_number\",\"title\":\"Call us\",\"payload\":\"+46701234567\"}]}}}");
    /* four mixed choices: more than the template's 3 buttons, so text */
    expect_fallback(MS, "{\"choice_message\":{\"text_message\":{\"text\":\"Q\"},\"choices\":["
                        "{\"text_message\":{\"text\":\"a\"}},{\"text_message\":{\"text\":\"b\"}},"
                        "{\"text_message\":{\"text\":\"c\"}},{\"url_message\":{\"title\":\"d\","
                        "\"url\":\"https://d.example.com\"}}]}}");
    /* location choices have no button */
    expect_fallback(MS, "{\"choice_message\":{\"text_message\":{\"text\":\"Where\"},\"choices\":["
                        "{\"location_message\":{\"title\":\"HQ\",\"coordinates\":{\"latitude\":1,"
                        "\"longitude\":2}}}]}}");
}

static void test_ms_card_and_carousel(void **state)
{
    (void)state;
    expect_msg(MS, APP_CARD_URL,
               "{\"attachment\":{\"type\":\"template\",\"payload\":{\"template_type\":\"generic\","
               "\"elements\":[{\"title\":\"Blue shoes\",\"subtitle\":\"Size 42, 79 EUR\","
               "\"image_url\":\"https://cdn.example.com/shoes.png\",\"buttons\":[{\"type\":"
               "\"postback\",\"title\":\"Buy\",\"payload\":\"buy-42\"},{\"type\":\"web_url\","
               "\"url\":\"https://shop.example.com/42\",\"title\":\"Details\"}]}]}}}");
    expect_msg(
        MS, APP_CAROUSEL,
        "{\"attachment\":{\"type\":\"template\",\"payload\":{\"template_type\":\"generic\","
        "\"elements\":[{\"title\":\"Red\",\"image_url\":\"https://cdn.example.com/red.png\"},"
        "{\"title\":\"Blue\",\"subtitle\":\"Navy\"}]}},\"quick_replies\":[{\"content_type\":"
        "\"text\",\"title\":\"More\",\"payload\":\"more\"}]}");
    /* a description alone becomes the element title */
    expect_msg(MS, "{\"card_message\":{\"description\":\"Only words\"}}",
               "{\"attachment\":{\"type\":\"template\",\"payload\":{\"template_type\":\"generic\","
               "\"elements\":[{\"title\":\"Only words\"}]}}}");
    /* media alone is an attachment */
    expect_msg(MS,
               "{\"card_message\":{\"media_message\":{\"url\":\"https://cdn.example.com/a.mp4\"}}}",
               "{\"attachment\":{\"type\":\"video\",\"payload\":{\"url\":"
               "\"https://cdn.example.com/a.mp4\"}}}");
    /* a title over 80 characters does not fit an element */
    expect_fallback(MS, "{\"card_message\":{\"title\":\"0123456789012345678901234567890123456789"
                        "01234567890123456789012345678901234567890\"}}");
}

static void test_ms_rest_is_text(void **state)
{
    (void)state;
    expect_fallback(MS, APP_LOCATION);
    expect_fallback(MS, APP_CONTACT);
    expect_fallback(MS, APP_LIST);
    expect_send_error(MS, APP_TEMPLATE, NULL, ERR_INVALID_ARGUMENT, "template");
}

static void test_ms_properties(void **state)
{
    (void)state;
    expect_send_props(MS, APP_TEXT, "{\"MESSENGER_MESSAGING_TYPE\":\"UPDATE\"}", MS_URL,
                      "{\"recipient\":{\"id\":\"" PSID "\"},\"messaging_type\":\"UPDATE\","
                      "\"message\":{\"text\":\"Hello there\"}}");
    expect_send_props(MS, APP_TEXT,
                      "{\"MESSENGER_MESSAGE_TAG\":\"HUMAN_AGENT\","
                      "\"MESSENGER_NOTIFICATION_TYPE\":\"SILENT_PUSH\"}",
                      MS_URL,
                      "{\"recipient\":{\"id\":\"" PSID "\"},\"messaging_type\":\"MESSAGE_TAG\","
                      "\"tag\":\"HUMAN_AGENT\",\"message\":{\"text\":\"Hello there\"},"
                      "\"notification_type\":\"SILENT_PUSH\"}");
    expect_send_error(MS, APP_TEXT, "{\"MESSENGER_MESSAGING_TYPE\":\"PUSH\"}", ERR_INVALID_ARGUMENT,
                      "MESSENGER_MESSAGING_TYPE");
    expect_send_error(MS, APP_TEXT, "{\"MESSENGER_MESSAGING_TYPE\":\"MESSAGE_TAG\"}",
                      ERR_INVALID_ARGUMENT, "MESSENGER_MESSAGE_TAG");
    expect_send_error(MS, APP_TEXT, "{\"MESSENGER_NOTIFICATION_TYPE\":\"LOUD\"}",
                      ERR_INVALID_ARGUMENT, "MESSENGER_NOTIFICATION_TYPE");
}

static void test_ms_limits_and_credential(void **state)
{
    (void)state;
    char *ok = text_app("\xe2\x9c\x93", 2000), *over = text_app("a", 2001);
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(build(MS, MS_CRED, ok, NULL, BASE, &h, &e), 0);
    channel_http_free(&h);
    expect_send_error(MS, over, NULL, ERR_INVALID_ARGUMENT, "Messenger allows at most 2000");
    free(ok);
    free(over);
    assert_int_equal(build(MS, "{\"token\":\"\"}", APP_TEXT, NULL, BASE, &h, &e), -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    assert_int_equal(
        build(MS, "{\"static_token\":{\"token\":\"abc\"}}", APP_TEXT, NULL, NULL, &h, &e), 0);
    assert_string_equal(h.url, "https://graph.facebook.com/v19.0/me/messages?access_token=abc");
    channel_http_free(&h);
}

/* ================= Instagram outbound ================= */

static void test_ig_messages(void **state)
{
    (void)state;
    expect_msg(IG, APP_TEXT, "{\"text\":\"Hello there\"}");
    expect_msg(IG, APP_IMAGE,
               "{\"attachment\":{\"type\":\"image\",\"payload\":{\"url\":\"https://cdn.example.com/"
               "pics/cat.JPG?sig=1\"}}}");
    expect_msg(IG, APP_AUDIO,
               "{\"attachment\":{\"type\":\"audio\",\"payload\":{\"url\":\"https://cdn.example.com/"
               "voice.ogg\"}}}");
    expect_msg(IG, APP_CHOICE_TEXT,
               "{\"text\":\"Pick one\",\"quick_replies\":[{\"content_type\":\"text\",\"title\":"
               "\"Yes\",\"payload\":\"yes\"},{\"content_type\":\"text\",\"title\":\"No\","
               "\"payload\":\"No\"}]}");
    /* no button template on Instagram: url/call choices go as text */
    expect_fallback(IG, APP_CHOICE_MIXED);
    expect_msg(IG, APP_CARD_URL,
               "{\"attachment\":{\"type\":\"template\",\"payload\":{\"template_type\":\"generic\","
               "\"elements\":[{\"title\":\"Blue shoes\",\"subtitle\":\"Size 42, 79 EUR\","
               "\"image_url\":\"https://cdn.example.com/shoes.png\",\"buttons\":[{\"type\":"
               "\"postback\",\"title\":\"Buy\",\"payload\":\"buy-42\"},{\"type\":\"web_url\","
               "\"url\":\"https://shop.example.com/42\",\"title\":\"Details\"}]}]}}}");
    /* no phone_number buttons on Instagram */
    expect_fallback(IG, "{\"card_message\":{\"title\":\"Call\",\"choices\":[{\"call_message\":{"
                        "\"title\":\"Call us\",\"phone_number\":\"+4610\"}}]}}");
    expect_msg(
        IG, APP_CAROUSEL,
        "{\"attachment\":{\"type\":\"template\",\"payload\":{\"template_type\":\"generic\","
        "\"elements\":[{\"title\":\"Red\",\"image_url\":\"https://cdn.example.com/red.png\"},"
        "{\"title\":\"Blue\",\"subtitle\":\"Navy\"}]}},\"quick_replies\":[{\"content_type\":"
        "\"text\",\"title\":\"More\",\"payload\":\"more\"}]}");
    expect_fallback(IG, APP_LOCATION);
    expect_fallback(IG, APP_CONTACT);
    expect_fallback(IG, APP_LIST);
    expect_send_error(IG, APP_TEMPLATE, NULL, ERR_INVALID_ARGUMENT, "template");
}

static void test_ig_account_tag_and_limits(void **state)
{
    (void)state;
    channel_http_t h;
    err_t e = {0};
    assert_int_equal(
        build(IG, "{\"token\":\"IGQW-token\",\"business_account_id\":\"17841400000000000\"}",
              APP_TEXT, NULL, BASE, &h, &e),
        0);
    assert_string_equal(h.url, BASE "/17841400000000000/messages");
    assert_string_equal(h.headers[1], "Authorization: Bearer IGQW-token");
    channel_http_free(&h);
    expect_send_props(IG, APP_TEXT, "{\"INSTAGRAM_MESSAGE_TAG\":\"HUMAN_AGENT\"}", IG_URL,
                      "{\"recipient\":{\"id\":\"" IGSID "\"},\"messaging_type\":\"MESSAGE_TAG\","
                      "\"tag\":\"HUMAN_AGENT\",\"message\":{\"text\":\"Hello there\"}}");
    /* Instagram counts UTF-8 bytes: 500 two-byte characters fit, 501 do not */
    char *ok = text_app("\xc3\xa5", 500), *over = text_app("\xc3\xa5", 501),
         *ascii = text_app("a", 1001);
    assert_int_equal(build(IG, IG_CRED, ok, NULL, BASE, &h, &e), 0);
    channel_http_free(&h);
    expect_send_error(IG, over, NULL, ERR_INVALID_ARGUMENT, "1002 bytes");
    expect_send_error(IG, ascii, NULL, ERR_INVALID_ARGUMENT, "Instagram allows at most 1000");
    free(ok);
    free(over);
    free(ascii);
    assert_int_equal(build(IG, "{}", APP_TEXT, NULL, BASE, &h, &e), -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
}

/* ================= send results ================= */

static void result(const channel_t *ch, long status, const char *body, channel_outcome_t outcome,
                   const char *provider_id, const char *reason, const char *description)
{
    channel_result_t r;
    memset(&r, 0x5a, sizeof r);
    ch->send_result(status, body, body ? strlen(body) : 0, &r);
    assert_int_equal(r.outcome, outcome);
    assert_string_equal(r.provider_id, provider_id);
    assert_string_equal(r.reason_code, reason);
    if (description) assert_string_equal(r.description, description);
}

static void test_wa_send_result(void **state)
{
    (void)state;
    result(WA, 200,
           "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"46701234567\","
           "\"wa_id\":\"46701234567\"}],\"messages\":[{\"id\":\"wamid.HBgLNDY3MDEyMzQ1NjcVAgARGBI5"
           "QTNDQTVCM0Q0Q0Q2RTY3RTcA\",\"message_status\":\"accepted\"}]}",
           CHANNEL_SENT, "wamid.HBgLNDY3MDEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "", "");
    result(WA, 200, "{}", CHANNEL_SENT, "", "", NULL);
    /* permanent */
    result(WA, 400,
           "{\"error\":{\"message\":\"(#131026) Message undeliverable.\",\"type\":"
           "\"OAuthException\",\"code\":131026,\"error_data\":{\"messaging_product\":\"whatsapp\","
           "\"details\":\"Message Undeliverable.\"},\"fbtrace_id\":\"AbCdEf\"}}",
           CHANNEL_FAILED, "", "RECIPIENT_NOT_REACHABLE",
           "(#131026) Message undeliverable. (Message Undeliverable.)");
    result(
        WA, 400,
        "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"type\":\"OAuthException\","
        "\"code\":131047,\"fbtrace_id\":\"x\"}}",
        CHANNEL_FAILED, "", "OUTSIDE_ALLOWED_SENDING_WINDOW", "(#131047) Re-engagement message");
    result(WA, 401,
           "{\"error\":{\"message\":\"Error validating access token: Session has expired\","
           "\"type\":\"OAuthException\",\"code\":190,\"error_subcode\":463}}",
           CHANNEL_FAILED, "", "INACTIVE_CREDENTIAL", NULL);
    result(WA, 400, "{\"error\":{\"message\":\"(#100) Invalid parameter\",\"code\":100}}",
           CHANNEL_FAILED, "", "BAD_REQUEST", NULL);
    result(WA, 400,
           "{\"error\":{\"message\":\"(#132001) Template name does not exist\",\"code\":132001}}",
           CHANNEL_FAILED, "", "TEMPLATE_NOT_FOUND", NULL);
    result(WA, 400, "{\"error\":{\"message\":\"Media download error\",\"code\":131052}}",
           CHANNEL_FAILED, "", "MEDIA_NOT_REACHABLE", NULL);
    result(WA, 400, "{\"error\":{\"message\":\"odd\",\"code\":999999}}", CHANNEL_FAILED, "",
           "CHANNEL_FAILURE", "odd");
    result(WA, 403, "forbidden", CHANNEL_FAILED, "", "NO_PERMISSION", "HTTP 403 from the provider");
    /* transient */
    result(WA, 400,
           "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"type\":\"OAuthException\","
           "\"code\":130429,\"fbtrace_id\":\"x\"}}",
           CHANNEL_RETRY, "", "RATE_LIMITED", "(#130429) Rate limit hit");
    result(WA, 400,
           "{\"error\":{\"message\":\"(#4) Application request limit reached\",\"code\":4}}",
           CHANNEL_RETRY, "", "RATE_LIMITED", NULL);
    result(WA, 400, "{\"error\":{\"message\":\"(#80007) Rate limit issues\",\"code\":80007}}",
           CHANNEL_RETRY, "", "RATE_LIMITED", NULL);
    result(WA, 400, "{\"error\":{\"message\":\"temp\",\"code\":12345,\"is_transient\":true}}",
           CHANNEL_RETRY, "", "CHANNEL_FAILURE", NULL);
    result(WA, 500, "{\"error\":{\"message\":\"(#131000) Something went wrong\",\"code\":131000}}",
           CHANNEL_RETRY, "", "CHANNEL_FAILURE", "(#131000) Something went wrong");
    result(WA, 503, "", CHANNEL_RETRY, "", "CHANNEL_FAILURE", "HTTP 503 from the provider");
    result(WA, 429, "<html>slow down</html>", CHANNEL_RETRY, "", "RATE_LIMITED", NULL);
    result(WA, 0, NULL, CHANNEL_RETRY, "", "CHANNEL_FAILURE", "no answer from the provider");
}

static void test_msgr_send_result(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        const channel_t *ch = i ? IG : MS;
        result(ch, 200,
               "{\"recipient_id\":\"1254477777772919\",\"message_id\":\"AG5Hz2Uq7tuwNEhXfYYKj8mJE"
               "M_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P\"}",
               CHANNEL_SENT,
               "AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_"
               "5cgXIbu7I3rBN0P",
               "", "");
        result(ch, 400,
               "{\"error\":{\"message\":\"(#551) This person isn't available right now.\",\"type\":"
               "\"OAuthException\",\"code\":551,\"error_subcode\":1545041,\"fbtrace_id\":\"B\"}}",
               CHANNEL_FAILED, "", "RECIPIENT_NOT_REACHABLE",
               "(#551) This person isn't available right now.");
        result(ch, 400,
               "{\"error\":{\"message\":\"(#10) This message is sent outside of allowed window.\","
               "\"type\":\"OAuthException\",\"code\":10,\"error_subcode\":2018278}}",
               CHANNEL_FAILED, "", "OUTSIDE_ALLOWED_SENDING_WINDOW", NULL);
        result(ch, 400,
               "{\"error\":{\"message\":\"(#10) Outside of allowed window\",\"code\":10,"
               "\"error_subcode\":2534022}}",
               CHANNEL_FAILED, "", "OUTSIDE_ALLOWED_SENDING_WINDOW", NULL);
        result(ch, 400, "{\"error\":{\"message\":\"(#10) Permission denied\",\"code\":10}}",
               CHANNEL_FAILED, "", "NO_PERMISSION", NULL);
        result(ch, 400,
               "{\"error\":{\"message\":\"(#100) No matching user found\",\"type\":"
               "\"OAuthException\",\"code\":100,\"error_subcode\":2018001}}",
               CHANNEL_FAILED, "", "RECIPIENT_INVALID_CHANNEL_IDENTITY", NULL);
        result(ch, 400, "{\"error\":{\"message\":\"(#613) Calls exceeded\",\"code\":613}}",
               CHANNEL_RETRY, "", "RATE_LIMITED", NULL);
        result(ch, 500,
               "{\"error\":{\"message\":\"(#1200) Temporary send message failure\",\"code\":1200}}",
               CHANNEL_RETRY, "", "CHANNEL_FAILURE", NULL);
        result(ch, 0, "", CHANNEL_RETRY, "", "CHANNEL_FAILURE", "no answer from the provider");
    }
}

/* ================= inbound plumbing ================= */

typedef struct {
    const char *hname[4], *hval[4];
    const char *qname[4], *qval[4];
} fake_t;

static const char *fake_header(void *cls, const char *name)
{
    fake_t *f = cls;
    for (int i = 0; i < 4 && f->hname[i]; i++)
        if (strcasecmp(f->hname[i], name) == 0) return f->hval[i];
    return NULL;
}

static const char *fake_query(void *cls, const char *name)
{
    fake_t *f = cls;
    for (int i = 0; i < 4 && f->qname[i]; i++)
        if (strcmp(f->qname[i], name) == 0) return f->qval[i];
    return NULL;
}

static channel_inbound_t inbound(fake_t *f, const char *method, const char *body)
{
    channel_inbound_t in = {.method = method,
                            .body = body,
                            .body_len = body ? strlen(body) : 0,
                            .header = fake_header,
                            .query = fake_query,
                            .cls = f};
    return in;
}

/* ================= signatures ================= */

#define SIG_SECRET "key"
#define SIG_BODY   "The quick brown fox jumps over the lazy dog"
/* HMAC-SHA256("key", SIG_BODY), the RFC 4231-style published example */
#define SIG_HEX "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"

static int verify_with(const channel_t *ch, const char *header, const char *body,
                       const char *secret, err_t *e)
{
    fake_t f = {{header ? "x-hub-signature-256" : NULL}, {header}};
    channel_inbound_t in = inbound(&f, "POST", body);
    json_t *cred = J(cred_for(ch));
    int rc = ch->verify(&in, cred, secret, e);
    json_decref(cred);
    return rc;
}

static void test_verify(void **state)
{
    (void)state;
    const channel_t *chs[] = {WA, MS, IG};
    for (int i = 0; i < 3; i++) {
        const channel_t *ch = chs[i];
        err_t e = {0};
        assert_int_equal(verify_with(ch, "sha256=" SIG_HEX, SIG_BODY, SIG_SECRET, &e), 0);
        /* upper-case hex is the same signature */
        assert_int_equal(verify_with(ch,
                                     "sha256=F7BC83F430538424B13298E6AA6FB143EF4D59A14946175997479D"
                                     "BC2D1A3CD8",
                                     SIG_BODY, SIG_SECRET, &e),
                         0);
        /* a signature computed here over a real webhook body */
        const char *body = "{\"object\":\"page\",\"entry\":[]}";
        uint8_t mac[SEC_HMAC_LEN];
        char hdr[80] = "sha256=";
        sec_hmac_sha256("app-secret-123", 14, body, strlen(body), mac);
        for (int k = 0; k < SEC_HMAC_LEN; k++)
            sprintf(hdr + 7 + 2 * k, "%02x", mac[k]);
        assert_int_equal(verify_with(ch, hdr, body, "app-secret-123", &e), 0);
        /* wrong signature (one digit changed) */
        assert_int_equal(verify_with(ch,
                                     "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479d"
                                     "bc2d1a3cd9",
                                     SIG_BODY, SIG_SECRET, &e),
                         -1);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        assert_contains(e.message, "does not match");
        /* a different body, or a different secret */
        assert_int_equal(verify_with(ch, "sha256=" SIG_HEX, SIG_BODY ".", SIG_SECRET, &e), -1);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        assert_int_equal(verify_with(ch, "sha256=" SIG_HEX, SIG_BODY, "key2", &e), -1);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        /* missing header */
        assert_int_equal(verify_with(ch, NULL, SIG_BODY, SIG_SECRET, &e), -1);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        assert_contains(e.message, "missing X-Hub-Signature-256");
        assert_int_equal(verify_with(ch, "", SIG_BODY, SIG_SECRET, &e), -1);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        /* malformed headers */
        const char *bad[] = {
            SIG_HEX,                /* no prefix */
            "sha1=" SIG_HEX,        /* the old X-Hub-Signature scheme */
            "sha256=" SIG_HEX "00", /* too long */
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd",  /* short */
            "sha256=g7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8", /* not hex */
            "sha256= f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd",
            "sha256=",
        };
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            assert_int_equal(verify_with(ch, bad[k], SIG_BODY, SIG_SECRET, &e), -1);
            assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        }
        /* no app secret configured: refused, never accepted */
        assert_int_equal(verify_with(ch, "sha256=" SIG_HEX, SIG_BODY, NULL, &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        assert_int_equal(verify_with(ch, "sha256=" SIG_HEX, SIG_BODY, "", &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
    }
    /* an empty body still has a signature */
    uint8_t mac[SEC_HMAC_LEN];
    char hdr[80] = "sha256=";
    sec_hmac_sha256("s", 1, "", 0, mac);
    for (int k = 0; k < SEC_HMAC_LEN; k++)
        sprintf(hdr + 7 + 2 * k, "%02x", mac[k]);
    err_t e = {0};
    assert_int_equal(verify_with(WA, hdr, NULL, "s", &e), 0);
}

/* ================= handshake ================= */

static int handshake(const channel_t *ch, const char *mode, const char *token,
                     const char *challenge, const char *secret, channel_reply_t *r, err_t *e)
{
    fake_t f = {.qname = {"hub.mode", "hub.verify_token", "hub.challenge"},
                .qval = {mode, token, challenge}};
    channel_inbound_t in = inbound(&f, "GET", NULL);
    memset(r, 0, sizeof *r);
    return ch->handshake(&in, NULL, secret, r, e);
}

static void test_handshake(void **state)
{
    (void)state;
    const channel_t *chs[] = {WA, MS, IG};
    for (int i = 0; i < 3; i++) {
        const channel_t *ch = chs[i];
        channel_reply_t r;
        err_t e = {0};
        assert_non_null(ch->handshake);
        assert_int_equal(
            handshake(ch, "subscribe", "app-secret-123", "1158201444", "app-secret-123", &r, &e),
            0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "1158201444");
        /* a wrong token, a prefix of it, or none */
        assert_int_equal(
            handshake(ch, "subscribe", "app-secret-124", "1", "app-secret-123", &r, &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        assert_int_equal(r.status, 403);
        assert_string_equal(r.body, "");
        assert_int_equal(handshake(ch, "subscribe", "app-secret", "1", "app-secret-123", &r, &e),
                         -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        assert_int_equal(handshake(ch, "subscribe", NULL, "1", "app-secret-123", &r, &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        /* a bad or missing mode */
        assert_int_equal(
            handshake(ch, "unsubscribe", "app-secret-123", "1", "app-secret-123", &r, &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        assert_int_equal(r.status, 403);
        assert_int_equal(handshake(ch, NULL, "app-secret-123", "1", "app-secret-123", &r, &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        /* no secret configured: nothing matches, not even an empty token */
        assert_int_equal(handshake(ch, "subscribe", "", "1", NULL, &r, &e), -1);
        assert_int_equal(e.code, ERR_PERMISSION_DENIED);
        assert_int_equal(handshake(ch, "subscribe", "", "1", "", &r, &e), -1);
        /* the challenge must be there and fit */
        assert_int_equal(
            handshake(ch, "subscribe", "app-secret-123", NULL, "app-secret-123", &r, &e), -1);
        assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
        char long_challenge[600];
        memset(long_challenge, '7', sizeof long_challenge - 1);
        long_challenge[sizeof long_challenge - 1] = '\0';
        assert_int_equal(
            handshake(ch, "subscribe", "app-secret-123", long_challenge, "app-secret-123", &r, &e),
            -1);
        assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    }
}

/* ================= inbound: parse helpers ================= */

static int parse(const channel_t *ch, const char *body, channel_events_t *ev, err_t *e)
{
    fake_t f = {{NULL}};
    channel_inbound_t in = inbound(&f, "POST", body);
    return ch->parse(&in, ev, e);
}

static void parse_ok(const channel_t *ch, const char *body, channel_events_t *ev, size_t n)
{
    err_t e = {0};
    memset(ev, 0, sizeof *ev);
    if (parse(ch, body, ev, &e) != 0)
        fail_msg("%s parse failed: %s\n%s", ch->name, e.message, body);
    if (ev->n != n) fail_msg("%s parse gave %zu events, want %zu", ch->name, ev->n, n);
}

/* A malformed payload is -1 INVALID_ARGUMENT and leaves the caller's events alone. */
static void parse_bad(const channel_t *ch, const char *body, const char *needle)
{
    channel_events_t ev = {0};
    channel_event_t *pre = channel_events_add(&ev);
    pre->kind = CHANNEL_EVENT_RECEIPT;
    strcpy(pre->provider_id, "kept");
    err_t e = {0};
    if (parse(ch, body, &ev, &e) != -1) fail_msg("%s parse accepted: %s", ch->name, body);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    if (needle) assert_contains(e.message, needle);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.items[0].provider_id, "kept");
    channel_events_free(&ev);
}

static void expect_message(const channel_event_t *ev, const char *identity, const char *pid,
                           int64_t ms, const char *display, const char *cm)
{
    assert_int_equal(ev->kind, CHANNEL_EVENT_MESSAGE);
    assert_string_equal(ev->identity, identity);
    assert_string_equal(ev->provider_id, pid);
    assert_int_equal(ev->time_ms, ms);
    assert_string_equal(ev->display_name, display);
    assert_non_null(ev->contact_message);
    char *s = dumps(ev->contact_message);
    assert_string_equal(s, cm);
    free(s);
    /* what the adapters produce is a valid Sinch ContactMessage (WhatsApp media ids are not
     * URLs yet: see docs/channels.md) */
    if (!strstr(cm, "whatsapp-media:")) {
        err_t e = {0};
        if (convo_message_check_contact(ev->contact_message, "contact_message", &e) != 0)
            fail_msg("not a valid ContactMessage: %s (%s)", cm, e.message);
    }
}

static void expect_receipt(const channel_event_t *ev, const char *identity, const char *pid,
                           const char *status, const char *reason, int64_t ms)
{
    assert_int_equal(ev->kind, CHANNEL_EVENT_RECEIPT);
    assert_string_equal(ev->identity, identity);
    assert_string_equal(ev->provider_id, pid);
    assert_string_equal(ev->status, status);
    assert_string_equal(ev->reason_code, reason);
    assert_int_equal(ev->time_ms, ms);
    assert_null(ev->contact_message);
}

/* ================= WhatsApp inbound ================= */

#define WA_HEAD                                                                                    \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","            \
    "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"                   \
    "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"},"           \
    "\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\"},\"wa_id\":\"16505551234\"}],"         \
    "\"messages\":["
#define WA_TAIL "]},\"field\":\"messages\"}]}]}"
#define WA_MSG(extra)                                                                              \
    WA_HEAD "{\"from\":\"16505551234\",\"id\":\"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0\","     \
            "\"timestamp\":\"1749416383\"," extra "}" WA_TAIL
#define WA_ID "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0"
#define WA_MS 1749416383000LL

static void wa_one(const char *body, const char *cm)
{
    channel_events_t ev;
    parse_ok(WA, body, &ev, 1);
    expect_message(&ev.items[0], "16505551234", WA_ID, WA_MS, "Sheena Nelson", cm);
    channel_events_free(&ev);
}

static void test_wa_parse_messages(void **state)
{
    (void)state;
    wa_one(WA_MSG("\"type\":\"text\",\"text\":{\"body\":\"Does it come in another color?\"}"),
           "{\"text_message\":{\"text\":\"Does it come in another color?\"}}");
    wa_one(WA_MSG("\"type\":\"image\",\"image\":{\"caption\":\"Look at this\",\"mime_type\":"
                  "\"image/jpeg\",\"sha256\":\"r7oPkDd6ogl4Ti4ChFx7aTVzhK1lUD5+FdBD5mZbbQM=\","
                  "\"id\":\"1003383421387256\"}"),
           "{\"media_card_message\":{\"url\":\"whatsapp-media:1003383421387256\",\"caption\":"
           "\"Look at this\"}}");
    wa_one(WA_MSG("\"type\":\"image\",\"image\":{\"mime_type\":\"image/jpeg\",\"sha256\":\"x\","
                  "\"id\":\"1003383421387257\"}"),
           "{\"media_message\":{\"url\":\"whatsapp-media:1003383421387257\"}}");
    wa_one(WA_MSG("\"type\":\"video\",\"video\":{\"mime_type\":\"video/mp4\",\"sha256\":\"x\","
                  "\"id\":\"1166846181421424\"}"),
           "{\"media_message\":{\"url\":\"whatsapp-media:1166846181421424\"}}");
    wa_one(WA_MSG("\"type\":\"audio\",\"audio\":{\"mime_type\":\"audio/ogg; codecs=opus\","
                  "\"sha256\":\"x\",\"id\":\"1003383421387258\",\"voice\":true}"),
           "{\"media_message\":{\"url\":\"whatsapp-media:1003383421387258\"}}");
    wa_one(
        WA_MSG("\"type\":\"document\",\"document\":{\"filename\":\"invoice.pdf\","
               "\"mime_type\":\"application/pdf\",\"sha256\":\"x\",\"id\":\"1003383421387259\"}"),
        "{\"media_message\":{\"url\":\"whatsapp-media:1003383421387259\",\"filename_override\":"
        "\"invoice.pdf\"}}");
    wa_one(WA_MSG("\"type\":\"sticker\",\"sticker\":{\"mime_type\":\"image/webp\",\"sha256\":\"x\","
                  "\"id\":\"1003383421387260\",\"animated\":false}"),
           "{\"media_message\":{\"url\":\"whatsapp-media:1003383421387260\"}}");
    wa_one(WA_MSG("\"type\":\"location\",\"location\":{\"address\":\"1 Hacker Way, Menlo Park, CA "
                  "94025\",\"latitude\":37.483307,\"longitude\":-122.148153,\"name\":\"Main "
                  "Campus\",\"url\":\"https://www.example.com\"}"),
           "{\"location_message\":{\"title\":\"Main Campus\",\"coordinates\":{\"latitude\":"
           "37.483307,\"longitude\":-122.148153},\"label\":\"1 Hacker Way, Menlo Park, CA "
           "94025\"}}");
    wa_one(WA_MSG("\"type\":\"location\",\"location\":{\"latitude\":1.5,\"longitude\":2}"),
           "{\"location_message\":{\"coordinates\":{\"latitude\":1.5,\"longitude\":2}}}");
}

static void test_wa_parse_replies(void **state)
{
    (void)state;
    /* reply buttons and list rows: postback_data is the id Parley sent */
    wa_one(WA_MSG("\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.CTX1\"},\"type\":"
                  "\"interactive\",\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{"
                  "\"id\":\"yes\",\"title\":\"Yes\"}}"),
           "{\"choice_response_message\":{\"message_id\":\"wamid.CTX1\",\"postback_data\":"
           "\"yes\"}}");
    wa_one(WA_MSG("\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.CTX2\"},\"type\":"
                  "\"interactive\",\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{"
                  "\"id\":\"pasta\",\"title\":\"Pasta\",\"description\":\"With basil\"}}"),
           "{\"choice_response_message\":{\"message_id\":\"wamid.CTX2\",\"postback_data\":"
           "\"pasta\"}}");
    /* template quick-reply buttons */
    wa_one(WA_MSG("\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.CTX3\"},\"type\":"
                  "\"button\",\"button\":{\"payload\":\"STOP\",\"text\":\"Stop promotions\"}"),
           "{\"choice_response_message\":{\"message_id\":\"wamid.CTX3\",\"postback_data\":"
           "\"STOP\"}}");
    /* no context: the reply's own id */
    wa_one(WA_MSG("\"type\":\"button\",\"button\":{\"text\":\"Yes please\"}"),
           "{\"choice_response_message\":{\"message_id\":\"" WA_ID "\",\"postback_data\":"
           "\"Yes please\"}}");
    /* WhatsApp Flows replies */
    wa_one(WA_MSG("\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{"
                  "\"name\":\"flow\",\"body\":\"Sent\",\"response_json\":\"{\\\"a\\\":1}\"}}"),
           "{\"channel_specific_message\":{\"message_type\":\"nfm_reply\",\"message\":{\"type\":"
           "\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\",\"response_json\":\"{\\\"a\\\":1}\","
           "\"body\":\"Sent\"}}}}");
}

static void test_wa_parse_unsupported(void **state)
{
    (void)state;
    channel_events_t ev;
    /* unknown kinds arrive as fallback_message with the raw provider message */
    parse_ok(WA,
             WA_MSG("\"type\":\"unsupported\",\"errors\":[{\"code\":131051,\"title\":"
                    "\"Message type unknown\"}]"),
             &ev, 1);
    json_t *fb = json_object_get(ev.items[0].contact_message, "fallback_message");
    assert_non_null(fb);
    assert_contains(json_string_value(json_object_get(fb, "raw_message")),
                    "\"type\":\"unsupported\"");
    assert_string_equal(json_string_value(json_object_get(json_object_get(fb, "reason"), "code")),
                        "UNSUPPORTED_OPERATION");
    assert_contains(
        json_string_value(json_object_get(json_object_get(fb, "reason"), "description")),
        "unsupported");
    channel_events_free(&ev);
    /* reactions are not messages */
    parse_ok(WA,
             WA_MSG("\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\",\"emoji\":"
                    "\"\\ud83d\\ude00\"}"),
             &ev, 0);
    channel_events_free(&ev);
    /* other objects and other fields: nothing to do */
    parse_ok(WA, "{\"object\":\"page\",\"entry\":[]}", &ev, 0);
    parse_ok(WA,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
             "\"value\":{\"event\":\"FLAGGED\"},\"field\":\"phone_number_quality_update\"}]}]}",
             &ev, 0);
    parse_ok(WA, "{\"object\":\"whatsapp_business_account\",\"entry\":[]}", &ev, 0);
    channel_events_free(&ev);
}

static void test_wa_parse_statuses(void **state)
{
    (void)state;
    channel_events_t ev;
    parse_ok(WA,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
             "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"},"
             "\"statuses\":["
             "{\"id\":\"wamid.S1\",\"status\":\"sent\",\"timestamp\":\"1750263773\","
             "\"recipient_id\":\"16505551234\",\"conversation\":{\"id\":\"c1\","
             "\"expiration_timestamp\":\"1750349580\",\"origin\":{\"type\":\"utility\"}},"
             "\"pricing\":{\"billable\":true,\"pricing_model\":\"CBP\",\"category\":\"utility\"}},"
             "{\"id\":\"wamid.S1\",\"status\":\"delivered\",\"timestamp\":\"1750263774\","
             "\"recipient_id\":\"16505551234\"},"
             "{\"id\":\"wamid.S1\",\"status\":\"read\",\"timestamp\":\"1750263775\","
             "\"recipient_id\":\"16505551234\"},"
             "{\"id\":\"wamid.S2\",\"status\":\"failed\",\"timestamp\":\"1750263776\","
             "\"recipient_id\":\"16505551235\",\"errors\":[{\"code\":131026,\"title\":"
             "\"Message undeliverable\",\"message\":\"Message undeliverable\",\"error_data\":{"
             "\"details\":\"Message Undeliverable.\"}}]},"
             "{\"id\":\"wamid.S3\",\"status\":\"failed\",\"timestamp\":\"1750263777\","
             "\"recipient_id\":\"16505551235\",\"errors\":[{\"code\":131047,\"title\":"
             "\"Re-engagement message\"}]},"
             "{\"id\":\"wamid.S4\",\"status\":\"failed\",\"timestamp\":\"1750263778\","
             "\"recipient_id\":\"16505551235\"},"
             "{\"id\":\"wamid.S5\",\"status\":\"deleted\",\"timestamp\":\"1750263779\","
             "\"recipient_id\":\"16505551235\"}"
             "]},\"field\":\"messages\"}]}]}",
             &ev, 6);
    expect_receipt(&ev.items[0], "16505551234", "wamid.S1", "QUEUED_ON_CHANNEL", "",
                   1750263773000LL);
    expect_receipt(&ev.items[1], "16505551234", "wamid.S1", "DELIVERED", "", 1750263774000LL);
    expect_receipt(&ev.items[2], "16505551234", "wamid.S1", "READ", "", 1750263775000LL);
    expect_receipt(&ev.items[3], "16505551235", "wamid.S2", "FAILED", "RECIPIENT_NOT_REACHABLE",
                   1750263776000LL);
    expect_receipt(&ev.items[4], "16505551235", "wamid.S3", "FAILED",
                   "OUTSIDE_ALLOWED_SENDING_WINDOW", 1750263777000LL);
    expect_receipt(&ev.items[5], "16505551235", "wamid.S4", "FAILED", "CHANNEL_FAILURE",
                   1750263778000LL);
    channel_events_free(&ev);
}

static void test_wa_parse_batches(void **state)
{
    (void)state;
    /* several entries, changes and messages in one delivery; names per sender */
    channel_events_t ev;
    parse_ok(WA,
             "{\"object\":\"whatsapp_business_account\",\"entry\":["
             "{\"id\":\"1\",\"changes\":[{\"value\":{\"contacts\":[{\"profile\":{\"name\":\"A\"},"
             "\"wa_id\":\"111\"},{\"profile\":{\"name\":\"B\"},\"wa_id\":\"222\"}],\"messages\":["
             "{\"from\":\"222\",\"id\":\"wamid.b\",\"timestamp\":\"2\",\"type\":\"text\","
             "\"text\":{\"body\":\"from b\"}},"
             "{\"from\":\"111\",\"id\":\"wamid.a\",\"timestamp\":\"1\",\"type\":\"text\","
             "\"text\":{\"body\":\"from a\"}}]},\"field\":\"messages\"}]},"
             "{\"id\":\"2\",\"changes\":[{\"value\":{\"statuses\":[{\"id\":\"wamid.c\",\"status\":"
             "\"read\",\"timestamp\":\"3\",\"recipient_id\":\"333\"}]},\"field\":\"messages\"}]}]}",
             &ev, 3);
    expect_message(&ev.items[0], "222", "wamid.b", 2000, "B",
                   "{\"text_message\":{\"text\":\"from b\"}}");
    expect_message(&ev.items[1], "111", "wamid.a", 1000, "A",
                   "{\"text_message\":{\"text\":\"from a\"}}");
    expect_receipt(&ev.items[2], "333", "wamid.c", "READ", "", 3000);
    /* events are appended after what the caller already has */
    err_t e = {0};
    assert_int_equal(parse(WA, WA_MSG("\"type\":\"text\",\"text\":{\"body\":\"x\"}"), &ev, &e), 0);
    assert_int_equal(ev.n, 4);
    assert_string_equal(ev.items[0].provider_id, "wamid.b");
    expect_message(&ev.items[3], "16505551234", WA_ID, WA_MS, "Sheena Nelson",
                   "{\"text_message\":{\"text\":\"x\"}}");
    channel_events_free(&ev);
}

static void test_wa_parse_malformed(void **state)
{
    (void)state;
    parse_bad(WA, "", NULL);
    parse_bad(WA, "not json", "invalid JSON");
    parse_bad(WA, "{\"object\":\"whatsapp_business_account\",", "invalid JSON");
    parse_bad(WA, "[]", "JSON object");
    parse_bad(WA, "{\"entry\":[]}", "object is required");
    parse_bad(WA, "{\"object\":7,\"entry\":[]}", "must be a string");
    parse_bad(WA, "{\"object\":\"whatsapp_business_account\"}", "entry is required");
    parse_bad(WA, "{\"object\":\"whatsapp_business_account\",\"entry\":{}}", "must be an array");
    parse_bad(WA, "{\"object\":\"whatsapp_business_account\",\"entry\":[1]}", "entry[]");
    parse_bad(WA, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":{}}]}", NULL);
    parse_bad(WA, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[\"x\"]}]}",
              NULL);
    parse_bad(WA,
              "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
              "\"messages\"}]}]}",
              "value");
    parse_bad(WA,
              "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
              "\"messages\",\"value\":[]}]}]}",
              "value");
    parse_bad(WA,
              "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
              "\"messages\",\"value\":{\"messages\":{}}}]}]}",
              "messages");
    parse_bad(WA,
              "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
              "\"messages\",\"value\":{\"messages\":[null]}}]}]}",
              "messages[]");
    parse_bad(WA,
              WA_HEAD "{\"id\":\"w\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":"
                      "\"x\"}}" WA_TAIL,
              "from is required");
    parse_bad(WA,
              WA_HEAD "{\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":"
                      "\"x\"}}" WA_TAIL,
              "id is required");
    parse_bad(WA, WA_HEAD "{\"from\":1,\"id\":\"w\",\"timestamp\":\"1\",\"type\":\"text\"}" WA_TAIL,
              "from must be a string");
    parse_bad(WA, WA_HEAD "{\"from\":\"1\",\"id\":\"w\",\"timestamp\":\"1\"}" WA_TAIL,
              "type is required");
    parse_bad(WA,
              WA_HEAD "{\"from\":\"1\",\"id\":\"w\",\"type\":\"text\",\"text\":{\"body\":"
                      "\"x\"}}" WA_TAIL,
              "timestamp");
    parse_bad(WA, WA_MSG("\"type\":\"text\",\"text\":\"hi\""), "must be an object");
    parse_bad(WA, WA_MSG("\"type\":\"text\""), "text is required");
    parse_bad(WA, WA_MSG("\"type\":\"text\",\"text\":{\"body\":5}"), "body must be a string");
    parse_bad(WA, WA_MSG("\"type\":\"text\",\"text\":{}"), "body is required");
    parse_bad(WA, WA_MSG("\"type\":\"image\",\"image\":{\"mime_type\":\"image/jpeg\"}"),
              "id is required");
    parse_bad(WA, WA_MSG("\"type\":\"image\""), "image is required");
    parse_bad(WA, WA_MSG("\"type\":\"document\",\"document\":{\"id\":\"1\",\"filename\":[]}"),
              "filename must be a string");
    parse_bad(WA, WA_MSG("\"type\":\"location\",\"location\":{\"latitude\":\"1\",\"longitude\":2}"),
              "latitude");
    parse_bad(WA, WA_MSG("\"type\":\"location\""), "latitude");
    parse_bad(WA, WA_MSG("\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\"}"),
              "id is required");
    parse_bad(WA,
              WA_MSG("\"type\":\"interactive\",\"interactive\":{\"button_reply\":{\"id\":\"1\"}}"),
              "type is required");
    parse_bad(WA,
              WA_MSG("\"type\":\"interactive\",\"interactive\":{\"type\":\"list_reply\","
                     "\"list_reply\":\"x\"}"),
              "must be an object");
    parse_bad(WA, WA_MSG("\"type\":\"button\",\"button\":{}"), "payload or text");
    parse_bad(WA, WA_MSG("\"context\":\"x\",\"type\":\"text\",\"text\":{\"body\":\"x\"}"),
              "context must be an object");
    parse_bad(WA,
              WA_HEAD "{\"from\":\"1\",\"id\":\"w\",\"timestamp\":\"12ab\",\"type\":\"text\","
                      "\"text\":{\"body\":\"x\"}}" WA_TAIL,
              "timestamp");
    parse_bad(WA,
              WA_HEAD "{\"from\":\"1\",\"id\":\"w\",\"timestamp\":-5,\"type\":\"text\","
                      "\"text\":{\"body\":\"x\"}}" WA_TAIL,
              "timestamp");
    const char *st_head = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
                          "\"field\":\"messages\",\"value\":{\"statuses\":[";
    char b[1024];
    snprintf(b, sizeof b, "%s{\"status\":\"read\",\"recipient_id\":\"1\"}]}}]}]}", st_head);
    parse_bad(WA, b, "id is required");
    snprintf(b, sizeof b, "%s{\"id\":\"w\",\"status\":\"read\"}]}}]}]}", st_head);
    parse_bad(WA, b, "recipient_id is required");
    snprintf(b, sizeof b, "%s{\"id\":\"w\",\"recipient_id\":\"1\"}]}}]}]}", st_head);
    parse_bad(WA, b, "status is required");
    snprintf(b, sizeof b,
             "%s{\"id\":\"w\",\"status\":\"read\",\"recipient_id\":\"1\","
             "\"timestamp\":\"x\"}]}}]}]}",
             st_head);
    parse_bad(WA, b, "timestamp");
    snprintf(b, sizeof b,
             "%s{\"id\":\"w\",\"status\":\"failed\",\"recipient_id\":\"1\","
             "\"errors\":[{\"code\":\"131026\"}]}]}}]}]}",
             st_head);
    parse_bad(WA, b, "code must be an integer");
    snprintf(b, sizeof b,
             "%s{\"id\":\"w\",\"status\":\"failed\",\"recipient_id\":\"1\","
             "\"errors\":{}}]}}]}]}",
             st_head);
    parse_bad(WA, b, "errors must be an array");
    snprintf(b, sizeof b, "%s7]}}]}]}", st_head);
    parse_bad(WA, b, "statuses[]");
    /* an identifier longer than the event can hold */
    char longid[400];
    memset(longid, 'w', 300);
    longid[300] = '\0';
    char body[2048];
    snprintf(body, sizeof body,
             WA_HEAD "{\"from\":\"1\",\"id\":\"%s\",\"timestamp\":\"1\",\"type\":\"text\","
                     "\"text\":{\"body\":\"x\"}}" WA_TAIL,
             longid);
    parse_bad(WA, body, "too long");
    /* an error in a later message undoes the earlier ones */
    parse_bad(WA,
              WA_HEAD "{\"from\":\"1\",\"id\":\"w1\",\"timestamp\":\"1\",\"type\":\"text\","
                      "\"text\":{\"body\":\"fine\"}},{\"from\":\"1\"}" WA_TAIL,
              NULL);
}

/* ================= Messenger inbound ================= */

#define MS_HEAD                                                                                    \
    "{\"object\":\"page\",\"entry\":[{\"id\":\"682498302938465\",\"time\":1458692752478,"          \
    "\"messaging\":["
#define MS_TAIL "]}]}"
#define MS_EVENT(extra)                                                                            \
    MS_HEAD "{\"sender\":{\"id\":\"1254477777772919\"},\"recipient\":{\"id\":"                     \
            "\"682498302938465\"},\"timestamp\":1458692752478," extra "}" MS_TAIL
#define MS_SENDER "1254477777772919"
#define MS_TS     1458692752478LL

static void ms_one(const channel_t *ch, const char *body, const char *pid, const char *cm)
{
    channel_events_t ev;
    parse_ok(ch, body, &ev, 1);
    expect_message(&ev.items[0], MS_SENDER, pid, MS_TS, "", cm);
    channel_events_free(&ev);
}

static void test_ms_parse_messages(void **state)
{
    (void)state;
    ms_one(MS,
           MS_EVENT("\"message\":{\"mid\":\"m_1457764197618:41d102a3e1ae206a38\",\"text\":"
                    "\"hello, world!\"}"),
           "m_1457764197618:41d102a3e1ae206a38", "{\"text_message\":{\"text\":\"hello, world!\"}}");
    ms_one(MS,
           MS_EVENT("\"message\":{\"mid\":\"m_2\",\"attachments\":[{\"type\":\"image\","
                    "\"payload\":{\"url\":\"https://scontent.xx.fbcdn.net/v/a.jpg\"}}]}"),
           "m_2", "{\"media_message\":{\"url\":\"https://scontent.xx.fbcdn.net/v/a.jpg\"}}");
    ms_one(MS,
           MS_EVENT("\"message\":{\"mid\":\"m_3\",\"text\":\"Red\",\"quick_reply\":{"
                    "\"payload\":\"DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED\"}}"),
           "m_3",
           "{\"choice_response_message\":{\"message_id\":\"m_3\",\"postback_data\":"
           "\"DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED\"}}");
    ms_one(MS,
           MS_EVENT("\"postback\":{\"mid\":\"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM\",\"title\":"
                    "\"TITLE_FOR_THE_CTA\",\"payload\":\"USER_DEFINED_PAYLOAD\"}"),
           "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM",
           "{\"choice_response_message\":{\"message_id\":\"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM\","
           "\"postback_data\":\"USER_DEFINED_PAYLOAD\"}}");
    /* older postbacks carry no mid: a stable id from sender and time */
    ms_one(MS, MS_EVENT("\"postback\":{\"title\":\"Get Started\",\"payload\":\"GET_STARTED\"}"),
           "postback-1254477777772919-1458692752478",
           "{\"choice_response_message\":{\"message_id\":\"postback-1254477777772919-"
           "1458692752478\",\"postback_data\":\"GET_STARTED\"}}");
    /* the legacy location attachment */
    ms_one(MS,
           MS_EVENT("\"message\":{\"mid\":\"m_4\",\"attachments\":[{\"title\":\"Pin\","
                    "\"url\":\"https://l.facebook.com/x\",\"type\":\"location\",\"payload\":{"
                    "\"coordinates\":{\"lat\":59.3293,\"long\":18.0686}}}]}"),
           "m_4",
           "{\"location_message\":{\"title\":\"Pin\",\"coordinates\":{\"latitude\":59.3293,"
           "\"longitude\":18.0686}}}");
    /* an attachment without a URL (a shared template): fallback */
    channel_events_t ev;
    parse_ok(MS,
             MS_EVENT("\"message\":{\"mid\":\"m_5\",\"attachments\":[{\"type\":\"template\","
                      "\"payload\":{\"template_type\":\"generic\"}}]}"),
             &ev, 1);
    assert_non_null(json_object_get(ev.items[0].contact_message, "fallback_message"));
    channel_events_free(&ev);
    /* text with two attachments: one event each, ids mid, mid#2, mid#3 */
    parse_ok(
        MS,
        MS_EVENT("\"message\":{\"mid\":\"m_6\",\"text\":\"look\",\"attachments\":["
                 "{\"type\":\"image\",\"payload\":{\"url\":\"https://cdn.example.com/1.jpg\"}},"
                 "{\"type\":\"file\",\"payload\":{\"url\":\"https://cdn.example.com/2.pdf\"}}]}"),
        &ev, 3);
    expect_message(&ev.items[0], MS_SENDER, "m_6", MS_TS, "",
                   "{\"text_message\":{\"text\":\"look\"}}");
    expect_message(&ev.items[1], MS_SENDER, "m_6#2", MS_TS, "",
                   "{\"media_message\":{\"url\":\"https://cdn.example.com/1.jpg\"}}");
    expect_message(&ev.items[2], MS_SENDER, "m_6#3", MS_TS, "",
                   "{\"media_message\":{\"url\":\"https://cdn.example.com/2.pdf\"}}");
    channel_events_free(&ev);
    /* echoes of our own sends, optins and reactions are not messages */
    parse_ok(MS,
             MS_EVENT("\"message\":{\"mid\":\"m_7\",\"is_echo\":true,\"app_id\":1517776481860111,"
                      "\"text\":\"sent by us\"}"),
             &ev, 0);
    parse_ok(MS, MS_EVENT("\"optin\":{\"ref\":\"PASS_THROUGH_PARAM\"}"), &ev, 0);
    parse_ok(MS, MS_EVENT("\"reaction\":{\"mid\":\"m_1\",\"action\":\"react\",\"emoji\":\"x\"}"),
             &ev, 0);
    /* another product's webhook */
    parse_ok(MS, "{\"object\":\"instagram\",\"entry\":[{\"messaging\":[7]}]}", &ev, 0);
    channel_events_free(&ev);
}

static void test_ms_parse_receipts(void **state)
{
    (void)state;
    channel_events_t ev;
    parse_ok(MS,
             MS_HEAD
             "{\"sender\":{\"id\":\"1254477777772919\"},\"recipient\":{\"id\":"
             "\"682498302938465\"},\"delivery\":{\"mids\":[\"mid.1458668856218:ed81099e15d3f4"
             "f233\",\"mid.1458668856218:ed81099e15d3f4f234\"],\"watermark\":1458668856253}},"
             "{\"sender\":{\"id\":\"1254477777772919\"},\"recipient\":{\"id\":"
             "\"682498302938465\"},\"timestamp\":1458668856463,\"read\":{\"watermark\":"
             "1458668856253}}" MS_TAIL,
             &ev, 3);
    expect_receipt(&ev.items[0], MS_SENDER, "mid.1458668856218:ed81099e15d3f4f233", "DELIVERED", "",
                   1458668856253LL);
    expect_receipt(&ev.items[1], MS_SENDER, "mid.1458668856218:ed81099e15d3f4f234", "DELIVERED", "",
                   1458668856253LL);
    /* Messenger reads name no message: everything up to the watermark */
    expect_receipt(&ev.items[2], MS_SENDER, "", "READ", "", 1458668856253LL);
    channel_events_free(&ev);
    parse_ok(MS, MS_EVENT("\"delivery\":{\"watermark\":1458668856253}"), &ev, 1);
    expect_receipt(&ev.items[0], MS_SENDER, "", "DELIVERED", "", 1458668856253LL);
    channel_events_free(&ev);
}

static void test_ms_parse_malformed(void **state)
{
    (void)state;
    parse_bad(MS, "nope", "invalid JSON");
    parse_bad(MS, "\"page\"", "invalid JSON");
    parse_bad(MS, "[{\"object\":\"page\"}]", "JSON object");
    parse_bad(MS, "{\"object\":\"page\"}", "entry is required");
    parse_bad(MS, "{\"object\":\"page\",\"entry\":[[]]}", "entry[]");
    parse_bad(MS, "{\"object\":\"page\",\"entry\":[{\"messaging\":{}}]}", "messaging");
    parse_bad(MS, MS_HEAD "3" MS_TAIL, "messaging[]");
    parse_bad(MS, MS_HEAD "{\"message\":{\"mid\":\"m\",\"text\":\"x\"}}" MS_TAIL, "sender.id");
    parse_bad(MS,
              MS_HEAD "{\"sender\":{\"id\":5},\"message\":{\"mid\":\"m\",\"text\":\"x\"}}" MS_TAIL,
              "id must be a string");
    parse_bad(MS, MS_HEAD "{\"sender\":\"5\",\"message\":{\"mid\":\"m\"}}" MS_TAIL,
              "sender must be an object");
    parse_bad(MS, MS_EVENT("\"message\":\"hi\""), "message must be an object");
    parse_bad(MS, MS_EVENT("\"message\":{\"text\":\"x\"}"), "mid is required");
    parse_bad(MS, MS_EVENT("\"message\":{\"mid\":\"m\",\"text\":7}"), "text must be a string");
    parse_bad(MS, MS_EVENT("\"message\":{\"mid\":\"m\",\"attachments\":{}}"), "attachments");
    parse_bad(MS, MS_EVENT("\"message\":{\"mid\":\"m\",\"attachments\":[{\"payload\":{}}]}"),
              "type is required");
    parse_bad(MS, MS_EVENT("\"message\":{\"mid\":\"m\",\"attachments\":[\"x\"]}"), "attachments");
    parse_bad(MS,
              MS_EVENT("\"message\":{\"mid\":\"m\",\"attachments\":[{\"type\":\"image\","
                       "\"payload\":{\"url\":1}}]}"),
              "url must be a string");
    parse_bad(MS,
              MS_EVENT("\"message\":{\"mid\":\"m\",\"attachments\":[{\"type\":\"location\","
                       "\"payload\":{\"coordinates\":{\"lat\":\"1\",\"long\":2}}}]}"),
              "coordinates");
    parse_bad(MS, MS_EVENT("\"message\":{\"mid\":\"m\",\"quick_reply\":{}}"),
              "payload is required");
    parse_bad(MS, MS_EVENT("\"message\":{\"mid\":\"m\",\"quick_reply\":[]}"), "quick_reply");
    parse_bad(MS, MS_EVENT("\"postback\":{\"title\":\"x\"}"), "payload is required");
    parse_bad(MS, MS_EVENT("\"postback\":{\"payload\":\"x\",\"mid\":4}"), "mid must be a string");
    parse_bad(MS, MS_EVENT("\"delivery\":{\"mids\":[1],\"watermark\":1}"), "delivery.mids");
    parse_bad(MS, MS_EVENT("\"delivery\":{\"mids\":\"m\"}"), "mids");
    parse_bad(MS, MS_EVENT("\"delivery\":{\"watermark\":\"soon\"}"), "watermark");
    parse_bad(MS, MS_EVENT("\"read\":{\"watermark\":-1}"), "watermark");
    parse_bad(MS, MS_EVENT("\"read\":5"), "read must be an object");
    parse_bad(MS,
              MS_HEAD "{\"sender\":{\"id\":\"1\"},\"timestamp\":true,\"message\":{\"mid\":\"m\","
                      "\"text\":\"x\"}}" MS_TAIL,
              "timestamp");
}

/* ================= Instagram inbound ================= */

#define IG_HEAD                                                                                    \
    "{\"object\":\"instagram\",\"entry\":[{\"time\":1569262486134,\"id\":\"17841400000000000\","   \
    "\"messaging\":["
#define IG_EVENT(extra)                                                                            \
    IG_HEAD "{\"sender\":{\"id\":\"" IGSID "\"},\"recipient\":{\"id\":\"17841400000000000\"},"     \
            "\"timestamp\":1569262485349," extra "}]}]}"
#define IG_TS 1569262485349LL

static void ig_one(const char *body, const char *pid, const char *cm)
{
    channel_events_t ev;
    parse_ok(IG, body, &ev, 1);
    expect_message(&ev.items[0], IGSID, pid, IG_TS, "", cm);
    channel_events_free(&ev);
}

static void test_ig_parse(void **state)
{
    (void)state;
    ig_one(IG_EVENT("\"message\":{\"mid\":\"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx\",\"text\":"
                    "\"Hi!\"}"),
           "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx", "{\"text_message\":{\"text\":\"Hi!\"}}");
    static const char *const kinds[] = {"image", "video",         "audio",   "file",
                                        "share", "story_mention", "ig_reel", NULL};
    for (const char *const *k = kinds; *k; k++) {
        char body[1024];
        snprintf(body, sizeof body,
                 IG_EVENT("\"message\":{\"mid\":\"ig_m\",\"attachments\":[{\"type\":\"%s\","
                          "\"payload\":{\"url\":\"https://lookaside.fbsbx.com/ig_messaging_cdn/"
                          "?asset_id=1\"}}]}"),
                 *k);
        ig_one(body, "ig_m",
               "{\"media_message\":{\"url\":\"https://lookaside.fbsbx.com/ig_messaging_cdn/"
               "?asset_id=1\"}}");
    }
    ig_one(IG_EVENT("\"message\":{\"mid\":\"ig_q\",\"text\":\"Yes\",\"quick_reply\":{\"payload\":"
                    "\"yes\"}}"),
           "ig_q",
           "{\"choice_response_message\":{\"message_id\":\"ig_q\",\"postback_data\":\"yes\"}}");
    ig_one(IG_EVENT("\"postback\":{\"mid\":\"ig_p\",\"title\":\"Buy\",\"payload\":\"buy-42\"}"),
           "ig_p",
           "{\"choice_response_message\":{\"message_id\":\"ig_p\",\"postback_data\":"
           "\"buy-42\"}}");
    /* Instagram reads name the message */
    channel_events_t ev;
    parse_ok(IG, IG_EVENT("\"read\":{\"mid\":\"ig_sent_1\"}"), &ev, 1);
    expect_receipt(&ev.items[0], IGSID, "ig_sent_1", "READ", "", IG_TS);
    channel_events_free(&ev);
    /* echoes and deleted messages are skipped; comments are not messages */
    parse_ok(IG, IG_EVENT("\"message\":{\"mid\":\"e\",\"text\":\"ours\",\"is_echo\":true}"), &ev,
             0);
    parse_ok(IG, IG_EVENT("\"message\":{\"mid\":\"d\",\"is_deleted\":true}"), &ev, 0);
    parse_ok(IG,
             "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\",\"time\":1,\"changes\":[{"
             "\"field\":\"comments\",\"value\":{\"id\":\"c\",\"text\":\"nice\"}}]}]}",
             &ev, 0);
    /* the App Dashboard's test event shape: changes[] with field "messages" */
    parse_ok(IG,
             "{\"object\":\"instagram\",\"entry\":[{\"id\":\"0\",\"time\":1700000000,\"changes\":[{"
             "\"field\":\"messages\",\"value\":{\"sender\":{\"id\":\"12334\"},\"recipient\":{"
             "\"id\":\"23245\"},\"timestamp\":\"1527459824\",\"message\":{\"mid\":\"random_mid\","
             "\"text\":\"random_text\"}}}]}]}",
             &ev, 1);
    expect_message(&ev.items[0], "12334", "random_mid", 1527459824LL, "",
                   "{\"text_message\":{\"text\":\"random_text\"}}");
    channel_events_free(&ev);
    /* a Messenger payload is not Instagram's */
    parse_ok(IG, MS_EVENT("\"message\":{\"mid\":\"m\",\"text\":\"x\"}"), &ev, 0);
    /* unsupported messages keep their raw form */
    parse_ok(IG, IG_EVENT("\"message\":{\"mid\":\"u\",\"is_unsupported\":true}"), &ev, 1);
    assert_non_null(json_object_get(ev.items[0].contact_message, "fallback_message"));
    channel_events_free(&ev);
}

static void test_ig_parse_malformed(void **state)
{
    (void)state;
    parse_bad(IG, "{\"object\":\"instagram\",\"entry\":\"x\"}", "entry");
    parse_bad(IG, IG_EVENT("\"message\":{\"mid\":[]}"), "mid must be a string");
    parse_bad(IG, IG_EVENT("\"read\":{\"mid\":1}"), "mid must be a string");
    parse_bad(IG, "{\"object\":\"instagram\",\"entry\":[{\"changes\":{}}]}", "changes");
    parse_bad(IG, "{\"object\":\"instagram\",\"entry\":[{\"changes\":[0]}]}", "changes[]");
    parse_bad(IG, "{\"object\":\"instagram\",\"entry\":[{\"changes\":[{\"field\":\"messages\"}]}]}",
              "must be an object");
    parse_bad(IG,
              "{\"object\":\"instagram\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
              "\"value\":{\"message\":{\"mid\":\"m\"}}}]}]}",
              "sender.id");
    parse_bad(IG,
              "{\"object\":\"instagram\",\"entry\":[{\"changes\":[{\"field\":\"messages\","
              "\"value\":{\"sender\":{\"id\":\"1\"},\"timestamp\":\"12x\",\"message\":{"
              "\"mid\":\"m\"}}}]}]}",
              "timestamp");
}

/* ================= credential check ================= */

static void test_check_requests(void **state)
{
    (void)state;
    channel_http_t h = {0};
    err_t e = {0};
    json_t *c = J(WA_CRED);
    channel_send_t in = {.base_url = BASE, .credential = c};
    assert_int_equal(WA->check(&in, &h, &e), 0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.url, BASE "/106540352242922");
    assert_string_equal(h.headers[0], "Authorization: Bearer EAAG-wa-token");
    assert_null(h.headers[1]);
    assert_null(h.body);
    channel_http_free(&h);
    json_decref(c);

    c = J(MS_CRED);
    in.credential = c;
    assert_int_equal(MS->check(&in, &h, &e), 0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.url, BASE "/me?access_token=EAAB%20page%2Ftoken%2B1");
    assert_null(h.headers[0]);
    assert_null(h.body);
    channel_http_free(&h);
    json_decref(c);

    c = J(IG_CRED);
    in.credential = c;
    in.base_url = NULL;
    assert_int_equal(IG->check(&in, &h, &e), 0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.url, "https://graph.facebook.com/v19.0/me?fields=id,username");
    assert_string_equal(h.headers[0], "Authorization: Bearer IGQW-token");
    assert_null(h.body);
    channel_http_free(&h);
    json_decref(c);

    /* no usable credential */
    const channel_t *chs[] = {WA, MS, IG};
    for (int i = 0; i < 3; i++) {
        c = J("{\"token\":\"\"}");
        in.credential = c;
        assert_int_equal(chs[i]->check(&in, &h, &e), -1);
        assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
        assert_null(h.url);
        json_decref(c);
    }
    in.credential = NULL;
    assert_int_equal(WA->check(&in, &h, &e), -1);
}

static void test_check_results(void **state)
{
    (void)state;
    const channel_t *chs[] = {WA, MS, IG};
    for (int i = 0; i < 3; i++) {
        const channel_t *ch = chs[i];
        char d[256] = "junk";
        const char *ok = "{\"verified_name\":\"Parley Test\",\"display_phone_number\":\"+1 555-078-"
                         "3881\",\"id\":\"106540352242922\",\"quality_rating\":\"GREEN\"}";
        assert_int_equal(ch->check_result(200, ok, strlen(ok), d, sizeof d), 0);
        assert_string_equal(d, "");
        const char *bad = "{\"error\":{\"message\":\"Invalid OAuth access token - Cannot parse "
                          "access token\",\"type\":\"OAuthException\",\"code\":190,"
                          "\"fbtrace_id\":\"AgQ\"}}";
        assert_int_equal(ch->check_result(400, bad, strlen(bad), d, sizeof d), -1);
        assert_string_equal(d, "Invalid OAuth access token - Cannot parse access token");
        assert_int_equal(ch->check_result(0, NULL, 0, d, sizeof d), -1);
        assert_string_equal(d, "no answer from the provider");
        assert_int_equal(ch->check_result(503, "<html>", 6, d, sizeof d), -1);
        assert_string_equal(d, "HTTP 503 from the provider");
        /* a small buffer is cut, still NUL-terminated */
        char small[8];
        assert_int_equal(ch->check_result(400, bad, strlen(bad), small, sizeof small), -1);
        assert_string_equal(small, "Invalid");
    }
}

/* ================= registry and helpers ================= */

static void test_registry(void **state)
{
    (void)state;
    const struct {
        convo_channel_t c;
        const channel_t *ch;
        const char *name, *key;
    } want[] = {{CONVO_WHATSAPP, WA, "WHATSAPP", "static_bearer"},
                {CONVO_MESSENGER, MS, "MESSENGER", "static_token"},
                {CONVO_INSTAGRAM, IG, "INSTAGRAM", "instagram_credentials"}};
    for (size_t i = 0; i < 3; i++) {
        const channel_t *ch = channel_get(want[i].c);
        assert_ptr_equal(ch, want[i].ch);
        assert_int_equal(ch->channel, want[i].c);
        assert_string_equal(ch->name, want[i].name);
        assert_string_equal(ch->credential_key, want[i].key);
        assert_string_equal(ch->default_base_url, "https://graph.facebook.com/v19.0");
        assert_non_null(ch->send);
        assert_non_null(ch->send_result);
        assert_non_null(ch->verify);
        assert_non_null(ch->parse);
        assert_non_null(ch->handshake);
        assert_non_null(ch->check);
        assert_non_null(ch->check_result);
        assert_non_null(ch->transcode);
    }
}

static void test_helpers(void **state)
{
    (void)state;
    assert_int_equal(channel_meta_chars("a\xc3\xa5\xe2\x9c\x93\xf0\x9f\x98\x80"), 4);
    char buf[4];
    utf8_copy(buf, sizeof buf, "a\xe2\x9c\x93"); /* never cuts inside a character */
    assert_string_equal(buf, "a");
    utf8_copy(buf, sizeof buf, "abc");
    assert_string_equal(buf, "abc");
    assert_string_equal(channel_meta_media_kind("https://x.example.com/a.JPEG", ""), "image");
    assert_string_equal(channel_meta_media_kind("https://x.example.com/a.mp4#t=3", ""), "video");
    assert_string_equal(channel_meta_media_kind("https://x.example.com/a.m4a?x=1.png", ""),
                        "audio");
    assert_string_equal(channel_meta_media_kind("https://x.example.com/dir.png/file", ""),
                        "document");
    assert_string_equal(channel_meta_media_kind("https://x.png", ""), "document");
    assert_string_equal(channel_meta_media_kind("https://x.example.com/", "a.ogg"), "audio");
    char *p = channel_meta_pct("a b/c~d.e_f-g+h%");
    assert_string_equal(p, "a%20b%2Fc~d.e_f-g%2Bh%25");
    free(p);
    /* unvalidated input to transcode is refused, not a crash */
    err_t e = {0};
    json_t *v = J("{\"unknown_message\":{}}");
    assert_null(WA->transcode(v, &e));
    assert_null(MS->transcode(v, &e));
    assert_null(IG->transcode(v, &e));
    json_decref(v);
    assert_null(WA->transcode(NULL, &e));
    assert_null(MS->transcode(NULL, &e));
    /* oddly typed fields inside a message do not crash either */
    v = J("{\"choice_message\":{\"choices\":7,\"text_message\":[]}}");
    json_t *r = MS->transcode(v, &e);
    json_decref(r);
    r = WA->transcode(v, &e);
    json_decref(r);
    json_decref(v);
}

static int setup(void **state)
{
    (void)state;
    return sec_init() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wa_text),
        cmocka_unit_test(test_wa_media),
        cmocka_unit_test(test_wa_choice_buttons),
        cmocka_unit_test(test_wa_choice_list),
        cmocka_unit_test(test_wa_choice_fallbacks),
        cmocka_unit_test(test_wa_card),
        cmocka_unit_test(test_wa_carousel),
        cmocka_unit_test(test_wa_location),
        cmocka_unit_test(test_wa_contacts),
        cmocka_unit_test(test_wa_list),
        cmocka_unit_test(test_wa_template),
        cmocka_unit_test(test_wa_limits),
        cmocka_unit_test(test_wa_credentials_and_base),
        cmocka_unit_test(test_ms_text_and_media),
        cmocka_unit_test(test_ms_choice),
        cmocka_unit_test(test_ms_card_and_carousel),
        cmocka_unit_test(test_ms_rest_is_text),
        cmocka_unit_test(test_ms_properties),
        cmocka_unit_test(test_ms_limits_and_credential),
        cmocka_unit_test(test_ig_messages),
        cmocka_unit_test(test_ig_account_tag_and_limits),
        cmocka_unit_test(test_wa_send_result),
        cmocka_unit_test(test_msgr_send_result),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_wa_parse_messages),
        cmocka_unit_test(test_wa_parse_replies),
        cmocka_unit_test(test_wa_parse_unsupported),
        cmocka_unit_test(test_wa_parse_statuses),
        cmocka_unit_test(test_wa_parse_batches),
        cmocka_unit_test(test_wa_parse_malformed),
        cmocka_unit_test(test_ms_parse_messages),
        cmocka_unit_test(test_ms_parse_receipts),
        cmocka_unit_test(test_ms_parse_malformed),
        cmocka_unit_test(test_ig_parse),
        cmocka_unit_test(test_ig_parse_malformed),
        cmocka_unit_test(test_check_requests),
        cmocka_unit_test(test_check_results),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
