/* whatsapp.c: the WHATSAPP channel adapter, for the WhatsApp Business Cloud API (Graph
 * API): POST {base}/{phone_number_id}/messages with a Bearer token, the messages webhook
 * (entry[].changes[].value.messages[] and .statuses[]) signed with X-Hub-Signature-256, and
 * GET {base}/{phone_number_id} as the credential check. The credential is static_bearer:
 * claimed_identity is the business phone number id, token the access token; the app
 * secret is the credential's callback_secret. Mapping table: docs/channels.md. */
#include "base/buf.h"
#include "base/jsonx.h"
#include "channels/channel.h"
#include "channels/meta.h"
#include "base/utf8.h"
#include "channels/render.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cloud API limits (characters). */
#define WA_TEXT_MAX          4096
#define WA_CAPTION_MAX       1024
#define WA_BUTTON_BODY_MAX   1024
#define WA_LIST_BODY_MAX     4096
#define WA_BUTTONS_MAX       3
#define WA_BUTTON_TITLE_MAX  20
#define WA_BUTTON_ID_MAX     256
#define WA_ROWS_MAX          10
#define WA_SECTIONS_MAX      10
#define WA_ROW_TITLE_MAX     24
#define WA_ROW_DESC_MAX      72
#define WA_ROW_ID_MAX        200
#define WA_SECTION_TITLE_MAX 24
#define WA_HEADER_MAX        60
#define WA_FOOTER_MAX        60
#define WA_MENU_MAX          20
#define WA_PRODUCTS_MAX      30
#define WA_TOKEN_MAX         900 /* keeps "Authorization: Bearer ..." inside one header line */

/* The list button label when the message does not name one (list_message.menu). */
static const char wa_menu_default[] = "Choose";

static size_t chars(const char *s)
{
    return channel_meta_chars(s);
}

static const char *str(json_t *o, const char *key)
{
    return channel_str_or(o, key);
}

/* {"type":T, T:content} (takes content). */
static json_t *wa_msg(const char *type, json_t *content)
{
    return json_pack("{s:s,s:o}", "type", type, type, content);
}

static json_t *wa_text(const char *text, const char *what, err_t *e)
{
    size_t n = chars(text);
    if (n > WA_TEXT_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s is %zu characters long; WhatsApp allows at most %d",
                what, n, WA_TEXT_MAX);
        return NULL;
    }
    return wa_msg("text", json_pack("{s:s}", "body", text));
}

/* What the native forms cannot hold goes as channel_render_text. */
static json_t *wa_fallback(json_t *m, const char *type, err_t *e)
{
    char *t = channel_render_text(m, e);
    if (!t) return NULL;
    char what[96];
    snprintf(what, sizeof what, "the text form of this %s", type);
    json_t *r = wa_text(t, what, e);
    free(t);
    return r;
}

/* "a\nb", skipping empty parts (malloc'd). */
static char *join(const char *a, const char *b)
{
    buf_t x;
    buf_init(&x);
    buf_puts(&x, a);
    if (*a && *b) buf_puts(&x, "\n");
    buf_puts(&x, b);
    return buf_steal(&x);
}

/* The last path segment of a URL ("" if none), malloc'd. */
static char *url_basename(const char *url)
{
    const char *start = strstr(url, "://");
    start = start ? strchr(start + 3, '/') : url;
    if (!start) return xstrdup("");
    size_t end = strcspn(start, "?#");
    const char *seg = start;
    for (size_t i = 0; i < end; i++)
        if (start[i] == '/') seg = start + i + 1;
    size_t n = (size_t)(start + end - seg);
    char *out = xmalloc(n + 1);
    memcpy(out, seg, n);
    out[n] = '\0';
    return out;
}

/* The lower-case extension of a file name ("" if none) into ext (cap bytes). */
static void name_ext(const char *name, char *ext, size_t cap)
{
    const char *dot = strrchr(name, '.');
    size_t n = dot ? strlen(dot + 1) : 0;
    ext[0] = '\0';
    if (!n || n >= cap) return;
    for (size_t i = 0; i <= n; i++)
        ext[i] =
            (char)((dot[1 + i] >= 'A' && dot[1 + i] <= 'Z') ? dot[1 + i] - 'A' + 'a' : dot[1 + i]);
}

/* The Cloud API takes only JPEG and PNG as images: WebP is its sticker format, and an image
 * message with a WebP link fails (media upload error). */
static const char *media_kind(json_t *media)
{
    const char *kind = channel_meta_media_kind(str(media, "url"), str(media, "filename_override"));
    if (strcmp(kind, "image") != 0) return kind;
    char ext[8], *base = url_basename(str(media, "url"));
    name_ext(base, ext, sizeof ext);
    if (!ext[0]) name_ext(str(media, "filename_override"), ext, sizeof ext);
    free(base);
    return strcmp(ext, "webp") == 0 ? "sticker" : kind;
}

/* The media object {"link", "caption"?, "filename"?} of a MediaProperties. */
static json_t *wa_media_object(json_t *media, const char *kind, const char *caption)
{
    json_t *o = json_pack("{s:s}", "link", str(media, "url"));
    if (caption && *caption) json_object_set_new(o, "caption", json_string(caption));
    if (strcmp(kind, "document") == 0) {
        const char *name = str(media, "filename_override");
        char *base = *name ? NULL : url_basename(str(media, "url"));
        if (*name || *base) json_object_set_new(o, "filename", json_string(*name ? name : base));
        free(base);
    }
    return o;
}

static json_t *wa_media(json_t *media, const char *caption)
{
    const char *kind = media_kind(media);
    return wa_msg(kind, wa_media_object(media, kind, caption));
}

/* The reply id of a choice: its postback_data, else its text (what comes back inbound). */
static const char *choice_id(json_t *c, const char *title)
{
    const char *id = str(c, "postback_data");
    return *id ? id : title;
}

/* Reply buttons for at most 3 text choices with titles of at most 20 characters; NULL when
 * the choices do not fit. */
static json_t *wa_buttons(json_t *choices)
{
    size_t i, n = json_array_size(choices);
    json_t *c;
    if (!n || n > WA_BUTTONS_MAX) return NULL;
    json_t *arr = json_array();
    json_array_foreach(choices, i, c)
    {
        const char *title = str(json_object_get(c, "text_message"), "text"), *id;
        if (!*title || chars(title) > WA_BUTTON_TITLE_MAX ||
            chars(id = choice_id(c, title)) > WA_BUTTON_ID_MAX) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, json_pack("{s:s,s:{s:s,s:s}}", "type", "reply", "reply", "id",
                                             id, "title", title));
    }
    return arr;
}

/* List rows for at most 10 text choices with titles of at most 24 characters, or NULL. */
static json_t *wa_choice_rows(json_t *choices)
{
    size_t i, n = json_array_size(choices);
    json_t *c;
    if (!n || n > WA_ROWS_MAX) return NULL;
    json_t *arr = json_array();
    json_array_foreach(choices, i, c)
    {
        const char *title = str(json_object_get(c, "text_message"), "text"), *id;
        if (!*title || chars(title) > WA_ROW_TITLE_MAX ||
            chars(id = choice_id(c, title)) > WA_ROW_ID_MAX) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, json_pack("{s:s,s:s}", "id", id, "title", title));
    }
    return arr;
}

static json_t *text_header(const char *text)
{
    return json_pack("{s:s,s:s}", "type", "text", "text", text);
}

/* {"type":"interactive","interactive":{type, header?, body, footer?, action}} (takes
 * header and action). */
static json_t *wa_interactive(const char *itype, json_t *header, const char *body,
                              const char *footer, json_t *action)
{
    json_t *o = json_pack("{s:s}", "type", itype);
    if (header) json_object_set_new(o, "header", header);
    json_object_set_new(o, "body", json_pack("{s:s}", "text", body));
    if (footer && *footer) json_object_set_new(o, "footer", json_pack("{s:s}", "text", footer));
    json_object_set_new(o, "action", action);
    return wa_msg("interactive", o);
}

static json_t *wa_choice(json_t *m, json_t *v, err_t *e)
{
    const char *text = str(json_object_get(v, "text_message"), "text");
    const char *footer = str(json_object_get(v, "message_properties"), "whatsapp_footer");
    json_t *choices = json_object_get(v, "choices"), *arr;
    if (chars(footer) > WA_FOOTER_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "choice_message.message_properties.whatsapp_footer is %zu characters long; "
                "WhatsApp allows at most %d",
                chars(footer), WA_FOOTER_MAX);
        return NULL;
    }
    if (*text && chars(text) <= WA_BUTTON_BODY_MAX && (arr = wa_buttons(choices)))
        return wa_interactive("button", NULL, text, footer, json_pack("{s:o}", "buttons", arr));
    if (*text && chars(text) <= WA_LIST_BODY_MAX && (arr = wa_choice_rows(choices)))
        return wa_interactive(
            "list", NULL, text, footer,
            json_pack("{s:s,s:[{s:o}]}", "button", wa_menu_default, "sections", "rows", arr));
    return wa_fallback(m, "choice_message", e);
}

static json_t *wa_card(json_t *m, json_t *v, err_t *e)
{
    json_t *media = json_object_get(v, "media_message"), *choices = json_object_get(v, "choices");
    const char *hdr = str(json_object_get(v, "message_properties"), "whatsapp_header");
    char *body = join(str(v, "title"), str(v, "description"));
    const char *kind = json_is_object(media) ? media_kind(media) : NULL;
    /* audio and stickers take no caption and cannot head an interactive message */
    int captionable = !kind || (strcmp(kind, "audio") != 0 && strcmp(kind, "sticker") != 0);
    json_t *r = NULL, *arr;
    if (!json_is_object(media)) media = NULL;
    if (json_array_size(choices)) {
        /* interactive reply buttons under a media (or text) header */
        if (*body && chars(body) <= WA_BUTTON_BODY_MAX && captionable &&
            (media || chars(hdr) <= WA_HEADER_MAX) && (arr = wa_buttons(choices))) {
            json_t *header = NULL;
            if (media)
                header = json_pack("{s:s,s:{s:s}}", "type", kind, kind, "link", str(media, "url"));
            else if (*hdr)
                header = text_header(hdr);
            r = wa_interactive("button", header, body, NULL, json_pack("{s:o}", "buttons", arr));
        }
    } else if (media) {
        /* a captioned image, video or document */
        if (!*body)
            r = wa_media(media, NULL);
        else if (captionable && chars(body) <= WA_CAPTION_MAX)
            r = wa_media(media, body);
    } else {
        r = wa_text(body, "the text of this card_message", e);
        free(body);
        return r;
    }
    free(body);
    return r ? r : wa_fallback(m, "card_message", e);
}

static json_t *wa_location(json_t *v)
{
    json_t *co = json_object_get(v, "coordinates");
    json_t *lat = json_object_get(co, "latitude"), *lng = json_object_get(co, "longitude");
    json_t *loc = json_pack("{s:O,s:O}", "latitude", lat ? lat : json_null(), "longitude",
                            lng ? lng : json_null());
    if (*str(v, "title")) json_object_set_new(loc, "name", json_string(str(v, "title")));
    if (*str(v, "label")) json_object_set_new(loc, "address", json_string(str(v, "label")));
    return wa_msg("location", loc);
}

/* dst[dkey] = src[skey] when that is a non-empty string. */
static int put(json_t *dst, const char *dkey, json_t *src, const char *skey)
{
    const char *s = str(src, skey);
    if (!*s) return 0;
    json_object_set_new(dst, dkey, json_string(s));
    return 1;
}

/* [{dkey: item[skey], type?}] for an array of typed items, or NULL when empty. */
static json_t *typed_list(json_t *arr, const char *dkey, const char *skey)
{
    json_t *out = json_array(), *it;
    size_t i;
    json_array_foreach(arr, i, it)
    {
        json_t *o = json_object();
        put(o, dkey, it, skey);
        put(o, "type", it, "type");
        json_array_append_new(out, o);
    }
    if (!json_array_size(out)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *wa_contacts(json_t *v)
{
    json_t *nm = json_object_get(v, "name"), *o, *arr, *it;
    size_t i;
    json_t *name = json_pack("{s:s}", "formatted_name", str(nm, "full_name"));
    int parts = put(name, "first_name", nm, "first_name") +
                put(name, "last_name", nm, "last_name") +
                put(name, "middle_name", nm, "middle_name") + put(name, "prefix", nm, "prefix") +
                put(name, "suffix", nm, "suffix");
    /* WhatsApp needs one name part besides formatted_name */
    if (!parts) put(name, "first_name", nm, "full_name");
    json_t *c = json_pack("{s:o}", "name", name);
    if ((arr = typed_list(json_object_get(v, "phone_numbers"), "phone", "phone_number")))
        json_object_set_new(c, "phones", arr);
    if ((arr = typed_list(json_object_get(v, "email_addresses"), "email", "email_address")))
        json_object_set_new(c, "emails", arr);
    if ((arr = typed_list(json_object_get(v, "urls"), "url", "url")))
        json_object_set_new(c, "urls", arr);
    if (json_array_size(json_object_get(v, "addresses"))) {
        static const char *const keys[] = {"city",         "state", "zip", "country",
                                           "country_code", "type",  NULL};
        arr = json_array();
        json_array_foreach(json_object_get(v, "addresses"), i, it)
        {
            o = json_object();
            for (const char *const *k = keys; *k; k++)
                put(o, *k, it, *k);
            json_array_append_new(arr, o);
        }
        json_object_set_new(c, "addresses", arr);
    }
    json_t *org = json_object_get(v, "organization");
    o = json_object();
    put(o, "company", org, "company");
    put(o, "department", org, "department");
    put(o, "title", org, "title");
    if (json_object_size(o))
        json_object_set_new(c, "org", o);
    else
        json_decref(o);
    put(c, "birthday", v, "birthday");
    return wa_msg("contacts", json_pack("[o]", c));
}

static json_t *wa_list(json_t *m, json_t *v, err_t *e)
{
    json_t *props = json_object_get(v, "message_properties"),
           *sections = json_object_get(v, "sections");
    const char *hdr = str(props, "whatsapp_header"), *menu = str(props, "menu"),
               *catalog = str(props, "catalog_id");
    size_t i, k, nsec = json_array_size(sections), nchoice = 0, nproduct = 0;
    json_t *s, *it;
    json_array_foreach(sections, i, s) json_array_foreach(json_object_get(s, "items"), k, it)
    {
        if (json_object_get(it, "product"))
            nproduct++;
        else
            nchoice++;
    }
    if (!*menu) menu = wa_menu_default;
    if (nproduct && nchoice) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "list_message mixes choice and product items; a WhatsApp list holds one kind");
        return NULL;
    }
    char *body = join(str(v, "title"), str(v, "description"));
    json_t *r = NULL, *out = json_array();
    int fits = nsec <= WA_SECTIONS_MAX;
    if (nproduct) {
        /* a multi-product message from the catalog: limits are errors, text cannot carry it */
        const char *htext = *hdr ? hdr : str(v, "title");
        if (!*catalog) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "list_message with products needs message_properties.catalog_id");
        } else if (chars(htext) > WA_HEADER_MAX) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "the header of this list_message is %zu characters long; WhatsApp allows "
                    "at most %d",
                    chars(htext), WA_HEADER_MAX);
        } else if (chars(body) > WA_BUTTON_BODY_MAX) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "the body of this list_message is %zu characters long; WhatsApp allows at "
                    "most %d",
                    chars(body), WA_BUTTON_BODY_MAX);
        } else if (nsec > WA_SECTIONS_MAX || nproduct > WA_PRODUCTS_MAX) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "list_message has %zu sections and %zu products; WhatsApp allows at most %d "
                    "sections and %d products",
                    nsec, nproduct, WA_SECTIONS_MAX, WA_PRODUCTS_MAX);
        } else {
            json_array_foreach(sections, i, s)
            {
                const char *st = str(s, "title");
                if ((nsec > 1 && !*st) || chars(st) > WA_SECTION_TITLE_MAX) {
                    err_set(e, ERR_INVALID_ARGUMENT,
                            "list_message.sections[%zu].title must be 1 to %d characters when "
                            "there are several sections",
                            i, WA_SECTION_TITLE_MAX);
                    goto done;
                }
                json_t *sec = json_object(), *items = json_array();
                if (*st) json_object_set_new(sec, "title", json_string(st));
                json_array_foreach(json_object_get(s, "items"), k, it) json_array_append_new(
                    items, json_pack("{s:s}", "product_retailer_id",
                                     str(json_object_get(it, "product"), "id")));
                json_object_set_new(sec, "product_items", items);
                json_array_append_new(out, sec);
            }
            r = wa_interactive("product_list", text_header(htext), body, NULL,
                               json_pack("{s:s,s:O}", "catalog_id", catalog, "sections", out));
        }
        goto done;
    }
    /* an interactive list of choices; what does not fit goes as text */
    size_t rows = 0;
    fits = fits && nchoice <= WA_ROWS_MAX && chars(body) <= WA_LIST_BODY_MAX &&
           chars(hdr) <= WA_HEADER_MAX && chars(menu) <= WA_MENU_MAX;
    json_array_foreach(sections, i, s)
    {
        const char *st = str(s, "title");
        if (!fits) break;
        if ((nsec > 1 && !*st) || chars(st) > WA_SECTION_TITLE_MAX) {
            fits = 0;
            break;
        }
        json_t *sec = json_object(), *arr = json_array();
        if (*st) json_object_set_new(sec, "title", json_string(st));
        json_object_set_new(sec, "rows", arr);
        json_array_append_new(out, sec);
        json_array_foreach(json_object_get(s, "items"), k, it)
        {
            json_t *ch = json_object_get(it, "choice");
            const char *title = str(ch, "title"), *desc = str(ch, "description");
            const char *id = choice_id(ch, title);
            if (!*title || chars(title) > WA_ROW_TITLE_MAX || chars(desc) > WA_ROW_DESC_MAX ||
                chars(id) > WA_ROW_ID_MAX) {
                fits = 0;
                break;
            }
            json_t *row = json_pack("{s:s,s:s}", "id", id, "title", title);
            if (*desc) json_object_set_new(row, "description", json_string(desc));
            json_array_append_new(arr, row);
            rows++;
        }
    }
    if (fits && rows)
        r = wa_interactive("list", *hdr ? text_header(hdr) : NULL, body, NULL,
                           json_pack("{s:s,s:O}", "button", menu, "sections", out));
    else
        r = wa_fallback(m, "list_message", e);
done:
    json_decref(out);
    free(body);
    return r;
}

/* ---- templates ---- */

typedef struct {
    int comp;   /* 0 header, 1 body, 2 button */
    long idx;   /* position (LONG_MAX: named body parameter) */
    size_t seq; /* insertion order, to keep the sort stable */
    const char *sub;
    json_t *param;
} tparam_t;

static int tparam_cmp(const void *a, const void *b)
{
    const tparam_t *x = a, *y = b;
    if (x->comp != y->comp) return x->comp < y->comp ? -1 : 1;
    if (x->idx != y->idx) return x->idx < y->idx ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* "prefix[N]rest": 1 with *n and *rest set. */
static int indexed(const char *k, const char *prefix, long *n, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(k, prefix, pl) != 0 || k[pl] != '[') return 0;
    char *end;
    const char *d = k + pl + 1;
    if (*d < '0' || *d > '9') return 0;
    long v = strtol(d, &end, 10);
    if (*end != ']' || v < 0 || v > 1000) return 0;
    *n = v;
    *rest = end + 1;
    return 1;
}

static int all_digits(const char *s)
{
    if (!*s || strlen(s) > 4) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* One Sinch template parameter as a WhatsApp component parameter (docs/channels.md):
 * "1" / "body[1]text" positional body text, "header[1]text" header text,
 * "header[1]image|video|document" header media link, "button[0]url" URL button suffix,
 * "button[0]payload" quick-reply payload, anything else a named body parameter. */
static tparam_t tparam(const char *k, const char *v, size_t seq)
{
    tparam_t t = {.comp = 1, .idx = LONG_MAX, .seq = seq};
    const char *rest;
    long n;
    if (all_digits(k)) {
        t.idx = strtol(k, NULL, 10);
        t.param = json_pack("{s:s,s:s}", "type", "text", "text", v);
    } else if (indexed(k, "body", &n, &rest) && strcmp(rest, "text") == 0) {
        t.idx = n;
        t.param = json_pack("{s:s,s:s}", "type", "text", "text", v);
    } else if (indexed(k, "header", &n, &rest) &&
               (!strcmp(rest, "text") || !strcmp(rest, "image") || !strcmp(rest, "video") ||
                !strcmp(rest, "document"))) {
        t.comp = 0;
        t.idx = n;
        t.param = strcmp(rest, "text") == 0
                      ? json_pack("{s:s,s:s}", "type", "text", "text", v)
                      : json_pack("{s:s,s:{s:s}}", "type", rest, rest, "link", v);
    } else if (indexed(k, "button", &n, &rest) &&
               (!strcmp(rest, "url") || !strcmp(rest, "payload"))) {
        t.comp = 2;
        t.idx = n;
        t.sub = strcmp(rest, "url") == 0 ? "url" : "quick_reply";
        t.param = strcmp(rest, "url") == 0
                      ? json_pack("{s:s,s:s}", "type", "text", "text", v)
                      : json_pack("{s:s,s:s}", "type", "payload", "payload", v);
    } else {
        t.param = json_pack("{s:s,s:s,s:s}", "type", "text", "parameter_name", k, "text", v);
    }
    return t;
}

static json_t *wa_components(json_t *params)
{
    size_t n = 0, cap = json_object_size(params);
    const char *k;
    json_t *v, *comps = json_array(), *cur = NULL;
    tparam_t *ps = xcalloc(cap ? cap : 1, sizeof *ps);
    json_object_foreach(params, k, v)
    {
        if (json_is_string(v)) {
            ps[n] = tparam(k, json_string_value(v), n);
            n++;
        }
    }
    qsort(ps, n, sizeof *ps, tparam_cmp);
    for (size_t i = 0; i < n; i++) {
        int fresh = i == 0 || ps[i].comp != ps[i - 1].comp ||
                    (ps[i].comp == 2 && ps[i].idx != ps[i - 1].idx);
        if (fresh) {
            if (ps[i].comp == 2) {
                char idx[24];
                snprintf(idx, sizeof idx, "%ld", ps[i].idx);
                cur = json_pack("{s:s,s:s,s:s,s:[]}", "type", "button", "sub_type", ps[i].sub,
                                "index", idx, "parameters");
            } else {
                cur = json_pack("{s:s,s:[]}", "type", ps[i].comp == 0 ? "header" : "body",
                                "parameters");
            }
            json_array_append_new(comps, cur);
        }
        json_array_append_new(json_object_get(cur, "parameters"), ps[i].param);
    }
    free(ps);
    return comps;
}

static json_t *wa_template(json_t *v, err_t *e)
{
    json_t *t = json_object_get(json_object_get(v, "channel_template"), "WHATSAPP");
    if (!json_is_object(t)) t = json_object_get(v, "omni_template");
    if (!json_is_object(t) || !*str(t, "template_id")) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "template_message needs channel_template.WHATSAPP or omni_template with a "
                "template_id (the WhatsApp template name)");
        return NULL;
    }
    if (!*str(t, "language_code")) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "WhatsApp templates need a language_code (the template's language, e.g. en_US)");
        return NULL;
    }
    json_t *tpl = json_pack("{s:s,s:{s:s}}", "name", str(t, "template_id"), "language", "code",
                            str(t, "language_code"));
    json_t *comps = wa_components(json_object_get(t, "parameters"));
    if (json_array_size(comps))
        json_object_set_new(tpl, "components", comps);
    else
        json_decref(comps);
    return wa_msg("template", tpl);
}

/* {"type":..., <type>:{...}}: the part of the Cloud API body that depends on the message. */
static json_t *wa_content(json_t *m, err_t *e)
{
    json_t *v;
    if (!json_is_object(m)) {
        err_set(e, ERR_INVALID_ARGUMENT, "app_message must be an object");
        return NULL;
    }
    if (json_is_object(v = json_object_get(m, "text_message")))
        return wa_text(str(v, "text"), "text_message.text", e);
    if (json_is_object(v = json_object_get(m, "media_message"))) return wa_media(v, NULL);
    if (json_is_object(v = json_object_get(m, "choice_message"))) return wa_choice(m, v, e);
    if (json_is_object(v = json_object_get(m, "card_message"))) return wa_card(m, v, e);
    if (json_is_object(json_object_get(m, "carousel_message")))
        return wa_fallback(m, "carousel_message", e);
    if (json_is_object(v = json_object_get(m, "location_message"))) return wa_location(v);
    if (json_is_object(v = json_object_get(m, "contact_info_message"))) return wa_contacts(v);
    if (json_is_object(v = json_object_get(m, "list_message"))) return wa_list(m, v, e);
    if (json_is_object(v = json_object_get(m, "template_message"))) return wa_template(v, e);
    err_set(e, ERR_INVALID_ARGUMENT, "app_message has no message type WhatsApp can carry");
    return NULL;
}

static json_t *wa_transcode(json_t *app_message, err_t *e)
{
    json_t *content = wa_content(app_message, e);
    if (!content) return NULL;
    json_t *r =
        json_pack("{s:s,s:s}", "messaging_product", "whatsapp", "recipient_type", "individual");
    json_object_update(r, content);
    json_decref(content);
    return r;
}

/* The phone number id and access token of the credential, or -1. */
static int wa_cred(json_t *cred, const char **phone, const char **token, err_t *e)
{
    *phone = channel_meta_cred(cred, "static_bearer", "claimed_identity");
    *token = channel_meta_cred(cred, "static_bearer", "token");
    if (!*phone)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "the WHATSAPP credential needs static_bearer.claimed_identity (the phone "
                       "number id)");
    if (!*token || strlen(*token) > WA_TOKEN_MAX)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "the WHATSAPP credential needs static_bearer.token (the access token)");
    return 0;
}

static char *wa_url(const char *base_url, const char *phone, const char *suffix)
{
    char *base = channel_meta_base(base_url), *id = channel_meta_pct(phone);
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s/%s%s", base, id, suffix);
    free(base);
    free(id);
    return buf_steal(&b);
}

static int wa_send(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *phone, *token;
    if (wa_cred(in->credential, &phone, &token, e) < 0) return -1;
    if (!in->recipient || !*in->recipient)
        return err_set(e, ERR_INVALID_ARGUMENT, "no WhatsApp recipient (phone number)");
    json_t *content = wa_content(in->app_message, e);
    if (!content) return -1;
    json_t *body = json_pack("{s:s,s:s,s:s}", "messaging_product", "whatsapp", "recipient_type",
                             "individual", "to", in->recipient);
    json_object_update(body, content);
    json_decref(content);
    char *s = channel_meta_dump(body), *url = wa_url(in->base_url, phone, "/messages");
    json_decref(body);
    channel_http_set(out, "POST", url, "application/json", s);
    channel_http_header(out, "Authorization: Bearer %s", token);
    free(s);
    free(url);
    return 0;
}

static void wa_send_result(long status, const char *body, size_t len, channel_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (status >= 200 && status < 300) {
        out->outcome = CHANNEL_SENT;
        json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
        const char *id = json_string_value(
            json_object_get(json_array_get(json_object_get(root, "messages"), 0), "id"));
        if (id)
            utf8_copy(out->provider_id, sizeof out->provider_id, id);
        else
            utf8_copy(out->description, sizeof out->description,
                      "the provider accepted the message without a messages[0].id");
        json_decref(root);
        return;
    }
    channel_meta_failure(status, body, len, out);
}

static int wa_check(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *phone, *token;
    if (wa_cred(in->credential, &phone, &token, e) < 0) return -1;
    char *url = wa_url(in->base_url, phone, "");
    channel_http_set(out, "GET", url, NULL, NULL);
    channel_http_header(out, "Authorization: Bearer %s", token);
    free(url);
    return 0;
}

static int wa_verify(const channel_inbound_t *in, json_t *credential, const char *secret, err_t *e)
{
    (void)credential;
    return channel_meta_verify(in, secret, e);
}

static int wa_handshake(const channel_inbound_t *in, json_t *credential, const char *secret,
                        channel_reply_t *reply, err_t *e)
{
    (void)credential;
    return channel_meta_handshake(in, secret, reply, e);
}

/* ---- inbound ---- */

/* "1700000000" (WhatsApp sends seconds as a string) -> ms; -1 when malformed. */
static int64_t seconds_ms(json_t *v)
{
    if (json_is_integer(v)) return json_integer_value(v) >= 0 ? json_integer_value(v) * 1000 : -1;
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 12) return -1;
    int64_t n = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        n = n * 10 + (*s - '0');
    }
    return n * 1000;
}

/* The sender's profile name from value.contacts[] (the entry whose wa_id is from, else
 * the first). */
static const char *profile_name(json_t *contacts, const char *from)
{
    json_t *c, *first = NULL;
    size_t i;
    json_array_foreach(contacts, i, c)
    {
        if (!json_is_object(c)) continue;
        if (!first) first = c;
        if (strcmp(str(c, "wa_id"), from) == 0) {
            first = c;
            break;
        }
    }
    return str(json_object_get(first, "profile"), "name");
}

static json_t *wa_media_in(channel_meta_parse_t *p, json_t *m, const char *type)
{
    json_t *o = NULL;
    const char *id = NULL, *caption = NULL, *filename = NULL;
    char path[32];
    snprintf(path, sizeof path, "messages[].%s", type);
    if (channel_meta_opt_type(p, m, type, "messages[]", JSON_OBJECT, "an object", &o) < 0)
        return NULL;
    if (!o) {
        err_set(p->e, ERR_INVALID_ARGUMENT, "%s is required", path);
        return NULL;
    }
    if (channel_meta_need_string(p, o, "id", path, &id) < 0 ||
        channel_meta_opt_string(p, o, "caption", path, &caption) < 0 ||
        channel_meta_opt_string(p, o, "filename", path, &filename) < 0)
        return NULL;
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "whatsapp-media:%s", id);
    json_t *r;
    if (caption && *caption) {
        r = json_pack("{s:{s:s,s:s}}", "media_card_message", "url", b.data, "caption", caption);
    } else {
        r = json_pack("{s:{s:s}}", "media_message", "url", b.data);
        if (filename && *filename)
            json_object_set_new(json_object_get(r, "media_message"), "filename_override",
                                json_string(filename));
    }
    buf_free(&b);
    return r;
}

static json_t *wa_location_in(channel_meta_parse_t *p, json_t *m)
{
    json_t *o = NULL;
    const char *name = NULL, *address = NULL;
    if (channel_meta_opt_type(p, m, "location", "messages[]", JSON_OBJECT, "an object", &o) < 0)
        return NULL;
    json_t *lat = json_object_get(o, "latitude"), *lng = json_object_get(o, "longitude");
    if (!json_is_number(lat) || !json_is_number(lng)) {
        err_set(p->e, ERR_INVALID_ARGUMENT,
                "messages[].location needs numeric latitude and longitude");
        return NULL;
    }
    if (channel_meta_opt_string(p, o, "name", "messages[].location", &name) < 0 ||
        channel_meta_opt_string(p, o, "address", "messages[].location", &address) < 0)
        return NULL;
    json_t *loc = json_object();
    if (name && *name) json_object_set_new(loc, "title", json_string(name));
    json_object_set_new(loc, "coordinates",
                        json_pack("{s:O,s:O}", "latitude", lat, "longitude", lng));
    if (address && *address) json_object_set_new(loc, "label", json_string(address));
    return json_pack("{s:o}", "location_message", loc);
}

/* interactive replies (button_reply, list_reply, nfm_reply); *skip for nothing to emit. */
static json_t *wa_interactive_in(channel_meta_parse_t *p, json_t *m, const char *reply_to)
{
    json_t *o = NULL, *r = NULL;
    const char *itype = NULL, *id = NULL;
    if (channel_meta_opt_type(p, m, "interactive", "messages[]", JSON_OBJECT, "an object", &o) < 0)
        return NULL;
    if (channel_meta_need_string(p, o, "type", "messages[].interactive", &itype) < 0) return NULL;
    if (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0) {
        char path[48];
        snprintf(path, sizeof path, "messages[].interactive.%s", itype);
        if (channel_meta_opt_type(p, o, itype, "messages[].interactive", JSON_OBJECT, "an object",
                                  &r) < 0 ||
            channel_meta_need_string(p, r, "id", path, &id) < 0)
            return NULL;
        return channel_meta_choice_response(reply_to, id);
    }
    if (strcmp(itype, "nfm_reply") == 0) {
        const char *name = NULL, *rj = NULL, *body = NULL;
        if (channel_meta_opt_type(p, o, "nfm_reply", "messages[].interactive", JSON_OBJECT,
                                  "an object", &r) < 0 ||
            channel_meta_opt_string(p, r, "name", "messages[].interactive.nfm_reply", &name) < 0 ||
            channel_meta_need_string(p, r, "response_json", "messages[].interactive.nfm_reply",
                                     &rj) < 0 ||
            channel_meta_opt_string(p, r, "body", "messages[].interactive.nfm_reply", &body) < 0)
            return NULL;
        return json_pack("{s:{s:s,s:{s:s,s:{s:s,s:s,s:s}}}}", "channel_specific_message",
                         "message_type", "nfm_reply", "message", "type", "nfm_reply", "nfm_reply",
                         "name", name ? name : "flow", "response_json", rj, "body",
                         body ? body : "");
    }
    char why[96];
    snprintf(why, sizeof why, "WhatsApp interactive type %.40s is not supported", itype);
    return channel_meta_fallback_message(m, why);
}

static int wa_message_in(channel_meta_parse_t *p, json_t *m, json_t *contacts)
{
    const char *from = NULL, *id = NULL, *type = NULL, *ctx_id = NULL;
    json_t *ctx = NULL, *cm = NULL;
    if (!json_is_object(m))
        return err_set(p->e, ERR_INVALID_ARGUMENT, "value.messages[] must be objects");
    if (channel_meta_need_string(p, m, "from", "messages[]", &from) < 0 ||
        channel_meta_need_string(p, m, "id", "messages[]", &id) < 0 ||
        channel_meta_need_string(p, m, "type", "messages[]", &type) < 0 ||
        channel_meta_opt_type(p, m, "context", "messages[]", JSON_OBJECT, "an object", &ctx) < 0 ||
        channel_meta_opt_string(p, ctx, "id", "messages[].context", &ctx_id) < 0)
        return -1;
    int64_t ms = seconds_ms(json_object_get(m, "timestamp"));
    if (ms < 0)
        return err_set(p->e, ERR_INVALID_ARGUMENT,
                       "messages[].timestamp must be a string of seconds since the epoch");
    /* choice replies name the message that carried the choices (context.id) */
    const char *reply_to = ctx_id && *ctx_id ? ctx_id : id;
    if (strcmp(type, "text") == 0) {
        json_t *t = NULL;
        const char *body = NULL;
        if (channel_meta_opt_type(p, m, "text", "messages[]", JSON_OBJECT, "an object", &t) < 0)
            return -1;
        if (!t) return err_set(p->e, ERR_INVALID_ARGUMENT, "messages[].text is required");
        if (channel_meta_opt_string(p, t, "body", "messages[].text", &body) < 0) return -1;
        if (!body) return err_set(p->e, ERR_INVALID_ARGUMENT, "messages[].text.body is required");
        cm = json_pack("{s:{s:s}}", "text_message", "text", body);
    } else if (!strcmp(type, "image") || !strcmp(type, "video") || !strcmp(type, "audio") ||
               !strcmp(type, "document") || !strcmp(type, "sticker")) {
        cm = wa_media_in(p, m, type);
    } else if (strcmp(type, "location") == 0) {
        cm = wa_location_in(p, m);
    } else if (strcmp(type, "interactive") == 0) {
        cm = wa_interactive_in(p, m, reply_to);
    } else if (strcmp(type, "button") == 0) {
        json_t *b = NULL;
        const char *payload = NULL, *text = NULL;
        if (channel_meta_opt_type(p, m, "button", "messages[]", JSON_OBJECT, "an object", &b) < 0 ||
            channel_meta_opt_string(p, b, "payload", "messages[].button", &payload) < 0 ||
            channel_meta_opt_string(p, b, "text", "messages[].button", &text) < 0)
            return -1;
        if (!payload || !*payload) payload = text;
        if (!payload || !*payload)
            return err_set(p->e, ERR_INVALID_ARGUMENT, "messages[].button needs a payload or text");
        cm = channel_meta_choice_response(reply_to, payload);
    } else if (strcmp(type, "reaction") == 0 || strcmp(type, "system") == 0) {
        return 0; /* not messages: channel.h has no event kind for these */
    } else {
        char why[96];
        snprintf(why, sizeof why, "WhatsApp message type %.40s is not supported", type);
        cm = channel_meta_fallback_message(m, why);
    }
    if (!cm) return -1;
    channel_event_t *ev = channel_meta_add_message(p, from, id, ms, cm);
    if (!ev) return -1;
    utf8_copy(ev->display_name, sizeof ev->display_name, profile_name(contacts, from));
    return 0;
}

static int wa_status_in(channel_meta_parse_t *p, json_t *s)
{
    static const char *const map[][2] = {{"sent", "QUEUED_ON_CHANNEL"},
                                         {"delivered", "DELIVERED"},
                                         {"read", "READ"},
                                         {"failed", "FAILED"}};
    const char *id = NULL, *status = NULL, *rcpt = NULL, *mapped = NULL;
    json_t *errors = NULL;
    if (!json_is_object(s))
        return err_set(p->e, ERR_INVALID_ARGUMENT, "value.statuses[] must be objects");
    if (channel_meta_need_string(p, s, "id", "statuses[]", &id) < 0 ||
        channel_meta_need_string(p, s, "status", "statuses[]", &status) < 0 ||
        channel_meta_need_string(p, s, "recipient_id", "statuses[]", &rcpt) < 0 ||
        channel_meta_opt_type(p, s, "errors", "statuses[]", JSON_ARRAY, "an array", &errors) < 0)
        return -1;
    int64_t ms = 0;
    json_t *ts = json_object_get(s, "timestamp");
    if (ts && (ms = seconds_ms(ts)) < 0)
        return err_set(p->e, ERR_INVALID_ARGUMENT,
                       "statuses[].timestamp must be a string of seconds since the epoch");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(status, map[i][0]) == 0) mapped = map[i][1];
    if (!mapped) return 0; /* deleted, warning, played, ...: nothing Parley tracks */
    channel_event_t *ev = channel_meta_add_receipt(p, rcpt, id, mapped, ms);
    if (!ev) return -1;
    if (strcmp(mapped, "FAILED") == 0) {
        json_t *er = json_array_get(errors, 0);
        int retry;
        const char *reason = NULL;
        if (json_is_object(er)) {
            json_t *code = json_object_get(er, "code");
            if (code && !json_is_integer(code))
                return err_set(p->e, ERR_INVALID_ARGUMENT,
                               "statuses[].errors[].code must be an integer");
            reason = channel_meta_reason((long)json_integer_value(code), 0, &retry);
        }
        utf8_copy(ev->reason_code, sizeof ev->reason_code, reason ? reason : "CHANNEL_FAILURE");
    }
    return 0;
}

static int wa_parse(const channel_inbound_t *in, channel_events_t *out, err_t *e)
{
    channel_meta_parse_t p = {.e = e};
    const char *obj = NULL;
    json_t *entries = NULL, *en, *ch, *it;
    size_t i, k, j;
    json_t *root = jsonx_parse(in->body ? in->body : "", in->body ? in->body_len : 0, e);
    if (!root) return -1;
    int rc = -1;
    if (!json_is_object(root)) {
        err_set(e, ERR_INVALID_ARGUMENT, "webhook payload must be a JSON object");
        goto done;
    }
    if (channel_meta_need_string(&p, root, "object", "payload", &obj) < 0) goto done;
    if (strcmp(obj, "whatsapp_business_account") != 0) {
        rc = 0;
        goto done;
    }
    int got = channel_meta_opt_type(&p, root, "entry", "payload", JSON_ARRAY, "an array", &entries);
    if (got <= 0) {
        if (got == 0) err_set(e, ERR_INVALID_ARGUMENT, "payload.entry is required");
        goto done;
    }
    json_array_foreach(entries, i, en)
    {
        json_t *changes = NULL;
        if (!json_is_object(en)) {
            err_set(e, ERR_INVALID_ARGUMENT, "entry[] must be objects");
            goto done;
        }
        if (channel_meta_opt_type(&p, en, "changes", "entry[]", JSON_ARRAY, "an array", &changes) <
            0)
            goto done;
        json_array_foreach(changes, k, ch)
        {
            const char *field = NULL;
            json_t *value = NULL, *msgs = NULL, *sts = NULL, *contacts = NULL;
            if (!json_is_object(ch)) {
                err_set(e, ERR_INVALID_ARGUMENT, "entry[].changes[] must be objects");
                goto done;
            }
            if (channel_meta_opt_string(&p, ch, "field", "changes[]", &field) < 0) goto done;
            if (field && strcmp(field, "messages") != 0) continue;
            if (channel_meta_opt_type(&p, ch, "value", "changes[]", JSON_OBJECT, "an object",
                                      &value) <= 0) {
                if (!value) err_set(e, ERR_INVALID_ARGUMENT, "changes[].value must be an object");
                goto done;
            }
            if (channel_meta_opt_type(&p, value, "messages", "value", JSON_ARRAY, "an array",
                                      &msgs) < 0 ||
                channel_meta_opt_type(&p, value, "statuses", "value", JSON_ARRAY, "an array",
                                      &sts) < 0 ||
                channel_meta_opt_type(&p, value, "contacts", "value", JSON_ARRAY, "an array",
                                      &contacts) < 0)
                goto done;
            json_array_foreach(msgs, j, it) if (wa_message_in(&p, it, contacts) < 0) goto done;
            json_array_foreach(sts, j, it) if (wa_status_in(&p, it) < 0) goto done;
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

const channel_t channel_whatsapp = {
    .channel = CONVO_WHATSAPP,
    .name = "WHATSAPP",
    .credential_key = "static_bearer",
    .default_base_url = CHANNEL_META_BASE_URL,
    .send = wa_send,
    .send_result = wa_send_result,
    .verify = wa_verify,
    .parse = wa_parse,
    .handshake = wa_handshake,
    .check = wa_check,
    .check_result = channel_meta_check_result,
    .transcode = wa_transcode,
};
