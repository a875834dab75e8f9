/* messages.c: the Conversation API's messages (see messages.h). Message content
 * validation lives here because every path that stores a message (inject now, send and
 * receive later) must agree on what a valid AppMessage or ContactMessage is. */
#include "convo/messages.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "stream/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================= content validation ================= */

#define PATH_LEN 320

/* Field paths only name fields in error messages: a cut-off deep path is acceptable. */
static void path_key(char out[PATH_LEN], const char *path, const char *key)
{
    if (snprintf(out, PATH_LEN, "%s.%s", path, key) >= PATH_LEN) out[PATH_LEN - 1] = '\0';
}

static void path_idx(char out[PATH_LEN], const char *path, size_t i)
{
    if (snprintf(out, PATH_LEN, "%s[%zu]", path, i) >= PATH_LEN) out[PATH_LEN - 1] = '\0';
}

/* The value at key, NULL when absent or JSON null. */
static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return (v && !json_is_null(v)) ? v : NULL;
}

static int wrong(const char *path, const char *key, const char *want, const json_t *v, err_t *e)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must be %s, got %s", path, key, want,
                   jsonx_type_name(v));
}

static int required(const char *path, const char *key, err_t *e)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s is required", path, key);
}

/* String at key: 0 absent (or empty), 1 ok, -1 error. max 0 = no cap. */
static int opt_str(json_t *o, const char *key, const char *path, size_t max, const char **out,
                   err_t *e)
{
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_string(v)) return wrong(path, key, "a string", v, e);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must not contain NUL characters", path, key);
    if (max && json_string_length(v) > max)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must be at most %zu characters, got %zu",
                       path, key, max, json_string_length(v));
    if (out) *out = s;
    return *s ? 1 : 0;
}

static int need_str(json_t *o, const char *key, const char *path, size_t max, const char **out,
                    err_t *e)
{
    int got = opt_str(o, key, path, max, out, e);
    if (got < 0) return -1;
    if (got == 0) return required(path, key, e);
    return 0;
}

static int check_url(const char *s, const char *path, const char *key, err_t *e)
{
    size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    if (!skip || !s[skip] || s[skip] == '/')
        return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must be an http or https URL, got \"%.80s\"",
                       path, key, s);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ')
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s.%s must be a URL without spaces or control characters", path, key);
    return 0;
}

static int opt_url(json_t *o, const char *key, const char *path, err_t *e)
{
    const char *s = NULL;
    int got = opt_str(o, key, path, 2048, &s, e);
    if (got <= 0) return got;
    return check_url(s, path, key, e) < 0 ? -1 : 1;
}

static int need_url(json_t *o, const char *key, const char *path, err_t *e)
{
    int got = opt_url(o, key, path, e);
    if (got < 0) return -1;
    if (got == 0) return required(path, key, e);
    return 0;
}

static int need_time(json_t *o, const char *key, const char *path, err_t *e)
{
    const char *s = NULL;
    if (need_str(o, key, path, 64, &s, e) < 0) return -1;
    int64_t ms;
    if (clock_parse_rfc3339(s, &ms) < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must be an RFC 3339 time, got \"%.64s\"",
                       path, key, s);
    return 0;
}

/* Object at key: 0 absent, 1 present, -1 error. */
static int opt_obj(json_t *o, const char *key, const char *path, json_t **out, err_t *e)
{
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_object(v)) return wrong(path, key, "an object", v, e);
    *out = v;
    return 1;
}

static int need_obj(json_t *o, const char *key, const char *path, json_t **out, err_t *e)
{
    int got = opt_obj(o, key, path, out, e);
    if (got < 0) return -1;
    if (got == 0) return required(path, key, e);
    return 0;
}

/* Array at key with min..max items: 0 absent (allowed only when min == 0), 1 ok, -1. */
static int arr_field(json_t *o, const char *key, const char *path, size_t min, size_t max,
                     json_t **out, err_t *e)
{
    json_t *v = field(o, key);
    if (!v) {
        if (min > 0) return required(path, key, e);
        return 0;
    }
    if (!json_is_array(v)) return wrong(path, key, "an array", v, e);
    size_t n = json_array_size(v);
    if (n < min || n > max) {
        if (max == (size_t)-1)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must have at least %zu items, got %zu",
                           path, key, min, n);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must have %zu to %zu items, got %zu", path,
                       key, min, max, n);
    }
    *out = v;
    return 1;
}

static int need_num(json_t *o, const char *key, const char *path, double min, double max, err_t *e)
{
    json_t *v = field(o, key);
    if (!v) return required(path, key, e);
    if (!json_is_number(v)) return wrong(path, key, "a number", v, e);
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s must be between %g and %g, got %g", path,
                       key, min, max, d);
    return 0;
}

static int opt_enum(json_t *o, const char *key, const char *path, const char *const values[],
                    err_t *e)
{
    const char *s = NULL;
    int got = opt_str(o, key, path, 64, &s, e);
    if (got <= 0) return got;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0) return 1;
    char list[256] = "";
    size_t off = 0;
    for (int i = 0; values[i] && off < sizeof list - 2; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", values[i]);
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "%s.%s has unknown value \"%.64s\"; expected one of: %s", path, key, s, list);
}

static void join_list(const char *const keys[], char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; keys[i] && off < cap - 2; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? ", " : "", keys[i]);
}

/* Exactly one of keys[] present (non-null) in o: its index, or -1. what names the kind
 * of thing ("message type", "choice type"). */
static int one_of(json_t *o, const char *path, const char *const keys[], const char *what, err_t *e)
{
    int which = -1;
    for (int i = 0; keys[i]; i++) {
        if (!field(o, keys[i])) continue;
        if (which >= 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s has both %s and %s; exactly one %s is allowed", path, keys[which],
                           keys[i], what);
        which = i;
    }
    if (which < 0) {
        char list[400];
        join_list(keys, list, sizeof list);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s must contain exactly one %s (one of: %s)", path,
                       what, list);
    }
    return which;
}

/* Every key of o must be in types[] or siblings[]. */
static int known_keys(json_t *o, const char *path, const char *const types[],
                      const char *const siblings[], err_t *e)
{
    const char *key = NULL;
    json_t *v = NULL;
    json_object_foreach(o, key, v)
    {
        int ok = 0;
        for (int i = 0; types[i] && !ok; i++)
            ok = strcmp(types[i], key) == 0;
        for (int i = 0; siblings[i] && !ok; i++)
            ok = strcmp(siblings[i], key) == 0;
        if (!ok) {
            char list[400];
            join_list(types, list, sizeof list);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s.%.64s is not a known message type or field (message types: %s)",
                           path, key, list);
        }
    }
    return 0;
}

/* An object whose values are all of one JSON type (explicit_channel_message etc.). */
static int map_of(json_t *o, const char *key, const char *path, json_type want, err_t *e)
{
    json_t *m = NULL;
    int got = opt_obj(o, key, path, &m, e);
    if (got <= 0) return got;
    const char *k = NULL;
    json_t *v = NULL;
    json_object_foreach(m, k, v)
    {
        if (json_typeof(v) != want) {
            char p[PATH_LEN];
            path_key(p, path, key);
            return wrong(p, k, want == JSON_STRING ? "a string" : "an object", v, e);
        }
    }
    return 1;
}

/* ---- item shapes ---- */

static int check_text_item(json_t *o, const char *path, size_t max, err_t *e)
{
    return need_str(o, "text", path, max, NULL, e);
}

static int check_media(json_t *o, const char *path, err_t *e)
{
    if (need_url(o, "url", path, e) < 0 || opt_url(o, "thumbnail_url", path, e) < 0 ||
        opt_str(o, "filename_override", path, 1024, NULL, e) < 0)
        return -1;
    return 0;
}

static int check_location_item(json_t *o, const char *path, int title_required, err_t *e)
{
    json_t *coords = NULL;
    char p[PATH_LEN];
    if (title_required ? need_str(o, "title", path, 1024, NULL, e) < 0
                       : opt_str(o, "title", path, 1024, NULL, e) < 0)
        return -1;
    if (need_obj(o, "coordinates", path, &coords, e) < 0) return -1;
    path_key(p, path, "coordinates");
    if (need_num(coords, "latitude", p, -90, 90, e) < 0 ||
        need_num(coords, "longitude", p, -180, 180, e) < 0)
        return -1;
    return opt_str(o, "label", path, 1024, NULL, e) < 0 ? -1 : 0;
}

static const char *const choice_types[] = {
    "text_message",           "url_message", "call_message", "location_message", "calendar_message",
    "share_location_message", NULL};

static int check_choice(json_t *c, const char *path, err_t *e)
{
    if (!json_is_object(c))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", path,
                       jsonx_type_name(c));
    int which = one_of(c, path, choice_types, "choice type", e);
    if (which < 0) return -1;
    char p[PATH_LEN];
    path_key(p, path, choice_types[which]);
    json_t *item = field(c, choice_types[which]);
    if (!json_is_object(item)) return wrong(path, choice_types[which], "an object", item, e);
    int rc = 0;
    switch (which) {
    case 0:
        rc = check_text_item(item, p, 4096, e);
        break;
    case 1:
        rc = (need_str(item, "title", p, 1024, NULL, e) < 0 || need_url(item, "url", p, e) < 0) ? -1
                                                                                                : 0;
        break;
    case 2:
        rc = (need_str(item, "title", p, 1024, NULL, e) < 0 ||
              need_str(item, "phone_number", p, 64, NULL, e) < 0)
                 ? -1
                 : 0;
        break;
    case 3:
        rc = check_location_item(item, p, 1, e);
        break;
    case 4:
        rc = (need_str(item, "title", p, 1024, NULL, e) < 0 ||
              need_time(item, "event_start", p, e) < 0 || need_time(item, "event_end", p, e) < 0 ||
              need_str(item, "event_title", p, 1024, NULL, e) < 0 ||
              opt_str(item, "event_description", p, 4096, NULL, e) < 0 ||
              need_url(item, "fallback_url", p, e) < 0)
                 ? -1
                 : 0;
        break;
    default:
        rc = (need_str(item, "title", p, 1024, NULL, e) < 0 ||
              need_url(item, "fallback_url", p, e) < 0)
                 ? -1
                 : 0;
        break;
    }
    if (rc < 0) return -1;
    return opt_str(c, "postback_data", path, 4096, NULL, e) < 0 ? -1 : 0;
}

/* The array at key of choices, min..max of them. */
static int check_choices(json_t *o, const char *key, const char *path, size_t min, size_t max,
                         err_t *e)
{
    json_t *arr = NULL;
    int got = arr_field(o, key, path, min, max, &arr, e);
    if (got <= 0) return got;
    char p[PATH_LEN], pi[PATH_LEN];
    path_key(p, path, key);
    size_t i;
    json_t *c = NULL;
    json_array_foreach(arr, i, c)
    {
        path_idx(pi, p, i);
        if (check_choice(c, pi, e) < 0) return -1;
    }
    return 0;
}

static const char *const card_heights[] = {"UNSPECIFIED_HEIGHT", "SHORT", "MEDIUM", "TALL", NULL};

static int check_card(json_t *o, const char *path, err_t *e)
{
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", path,
                       jsonx_type_name(o));
    json_t *media = NULL;
    int t = opt_str(o, "title", path, 1024, NULL, e);
    int d = t < 0 ? -1 : opt_str(o, "description", path, 4096, NULL, e);
    int m = d < 0 ? -1 : opt_obj(o, "media_message", path, &media, e);
    if (m < 0) return -1;
    if (m) {
        char p[PATH_LEN];
        path_key(p, path, "media_message");
        if (check_media(media, p, e) < 0) return -1;
    }
    if (!t && !d && !m)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s must have at least a title, description or media_message", path);
    if (opt_enum(o, "height", path, card_heights, e) < 0) return -1;
    return check_choices(o, "choices", path, 0, 10, e) < 0 ? -1 : 0;
}

static int check_contact_info(json_t *o, const char *path, err_t *e)
{
    json_t *name = NULL, *arr = NULL, *it = NULL;
    char p[PATH_LEN], pi[PATH_LEN];
    size_t i;
    if (need_obj(o, "name", path, &name, e) < 0) return -1;
    path_key(p, path, "name");
    if (need_str(name, "full_name", p, 1024, NULL, e) < 0) return -1;
    if (arr_field(o, "phone_numbers", path, 1, (size_t)-1, &arr, e) < 0) return -1;
    path_key(p, path, "phone_numbers");
    json_array_foreach(arr, i, it)
    {
        path_idx(pi, p, i);
        if (!json_is_object(it))
            return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", pi,
                           jsonx_type_name(it));
        if (need_str(it, "phone_number", pi, 64, NULL, e) < 0) return -1;
    }
    static const struct {
        const char *arr, *key;
    } lists[] = {{"email_addresses", "email_address"}, {"urls", "url"}};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        int got = arr_field(o, lists[l].arr, path, 0, (size_t)-1, &arr, e);
        if (got < 0) return -1;
        if (!got) continue;
        path_key(p, path, lists[l].arr);
        json_array_foreach(arr, i, it)
        {
            path_idx(pi, p, i);
            if (!json_is_object(it))
                return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", pi,
                               jsonx_type_name(it));
            if (need_str(it, lists[l].key, pi, 2048, NULL, e) < 0) return -1;
        }
    }
    return 0;
}

static int check_product(json_t *o, const char *path, err_t *e)
{
    if (need_str(o, "id", path, 256, NULL, e) < 0 ||
        need_str(o, "marketplace", path, 256, NULL, e) < 0)
        return -1;
    return 0;
}

static int check_list(json_t *o, const char *path, err_t *e)
{
    json_t *sections = NULL, *s = NULL, *items = NULL, *it = NULL, *media = NULL, *inner = NULL;
    char p[PATH_LEN], ps[PATH_LEN], pi[PATH_LEN], pit[PATH_LEN], pk[PATH_LEN];
    size_t i, j;
    static const char *const item_types[] = {"choice", "product", NULL};
    if (need_str(o, "title", path, 1024, NULL, e) < 0 ||
        opt_str(o, "description", path, 4096, NULL, e) < 0)
        return -1;
    int m = opt_obj(o, "media", path, &media, e);
    if (m < 0) return -1;
    if (m) {
        path_key(p, path, "media");
        if (check_media(media, p, e) < 0) return -1;
    }
    if (arr_field(o, "sections", path, 1, (size_t)-1, &sections, e) < 0) return -1;
    path_key(p, path, "sections");
    json_array_foreach(sections, i, s)
    {
        path_idx(ps, p, i);
        if (!json_is_object(s))
            return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", ps,
                           jsonx_type_name(s));
        if (opt_str(s, "title", ps, 1024, NULL, e) < 0) return -1;
        if (arr_field(s, "items", ps, 1, (size_t)-1, &items, e) < 0) return -1;
        path_key(pi, ps, "items");
        json_array_foreach(items, j, it)
        {
            path_idx(pit, pi, j);
            if (!json_is_object(it))
                return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", pit,
                               jsonx_type_name(it));
            int which = one_of(it, pit, item_types, "item type", e);
            if (which < 0) return -1;
            if (need_obj(it, item_types[which], pit, &inner, e) < 0) return -1;
            path_key(pk, pit, item_types[which]);
            if (which == 0) {
                json_t *cm = NULL;
                int got;
                if (need_str(inner, "title", pk, 1024, NULL, e) < 0 ||
                    opt_str(inner, "description", pk, 4096, NULL, e) < 0 ||
                    opt_str(inner, "postback_data", pk, 4096, NULL, e) < 0 ||
                    (got = opt_obj(inner, "media", pk, &cm, e)) < 0)
                    return -1;
                if (got) {
                    char pm[PATH_LEN];
                    path_key(pm, pk, "media");
                    if (check_media(cm, pm, e) < 0) return -1;
                }
            } else if (check_product(inner, pk, e) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int check_template_params(json_t *o, const char *path, err_t *e)
{
    return map_of(o, "parameters", path, JSON_STRING, e) < 0 ? -1 : 0;
}

static int check_template(json_t *o, const char *path, err_t *e)
{
    json_t *omni = NULL, *ct = NULL;
    char p[PATH_LEN], pc[PATH_LEN];
    int got_omni = opt_obj(o, "omni_template", path, &omni, e);
    if (got_omni < 0) return -1;
    if (got_omni) {
        path_key(p, path, "omni_template");
        if (need_str(omni, "template_id", p, 256, NULL, e) < 0 ||
            need_str(omni, "version", p, 64, NULL, e) < 0 ||
            opt_str(omni, "language_code", p, 32, NULL, e) < 0 ||
            check_template_params(omni, p, e) < 0)
            return -1;
    }
    int got_ct = opt_obj(o, "channel_template", path, &ct, e);
    if (got_ct < 0) return -1;
    if (got_ct) {
        path_key(p, path, "channel_template");
        const char *k = NULL;
        json_t *v = NULL;
        json_object_foreach(ct, k, v)
        {
            if (!json_is_object(v)) return wrong(p, k, "an object", v, e);
            path_key(pc, p, k);
            if (need_str(v, "template_id", pc, 256, NULL, e) < 0 ||
                opt_str(v, "version", pc, 64, NULL, e) < 0 ||
                opt_str(v, "language_code", pc, 32, NULL, e) < 0 ||
                check_template_params(v, pc, e) < 0)
                return -1;
        }
        if (json_object_size(ct) == 0) got_ct = 0;
    }
    if (!got_omni && !got_ct)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s needs omni_template or channel_template", path);
    return 0;
}

static const char *const agent_types[] = {"UNKNOWN_AGENT_TYPE", "HUMAN", "BOT", NULL};

static const char *const app_types[] = {"text_message",         "media_message",
                                        "card_message",         "choice_message",
                                        "carousel_message",     "location_message",
                                        "contact_info_message", "list_message",
                                        "template_message",     NULL};
static const char *const app_siblings[] = {"explicit_channel_message",
                                           "explicit_channel_omni_message",
                                           "channel_specific_message", "agent", NULL};

/* The one message type msg holds (an index into types) with its object, its path in p; the
 * other keys must be among siblings. -1 with e set otherwise. */
static int message_item(json_t *msg, const char *field_name, const char *const types[],
                        const char *const siblings[], json_t **item, char p[PATH_LEN], err_t *e)
{
    if (!msg || !json_is_object(msg))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", field_name,
                       msg ? jsonx_type_name(msg) : "nothing");
    if (known_keys(msg, field_name, types, siblings, e) < 0) return -1;
    int which = one_of(msg, field_name, types, "message type", e);
    if (which < 0) return -1;
    path_key(p, field_name, types[which]);
    *item = field(msg, types[which]);
    if (!json_is_object(*item)) return wrong(field_name, types[which], "an object", *item, e);
    return which;
}

int convo_message_check_app(json_t *msg, const char *field_name, err_t *e)
{
    char p[PATH_LEN];
    json_t *item = NULL;
    int which = message_item(msg, field_name, app_types, app_siblings, &item, p, e);
    if (which < 0) return -1;
    int rc = 0;
    switch (which) {
    case 0:
        rc = check_text_item(item, p, 4096, e);
        break;
    case 1:
        rc = check_media(item, p, e);
        break;
    case 2:
        rc = check_card(item, p, e);
        break;
    case 3: {
        json_t *t = NULL;
        int got;
        if (check_choices(item, "choices", p, 1, 10, e) < 0 ||
            (got = opt_obj(item, "text_message", p, &t, e)) < 0) {
            rc = -1;
        } else if (got) {
            char pt[PATH_LEN];
            path_key(pt, p, "text_message");
            rc = check_text_item(t, pt, 4096, e);
        }
        break;
    }
    case 4: {
        json_t *cards = NULL, *c = NULL;
        size_t i;
        char pc[PATH_LEN], pi[PATH_LEN];
        if (arr_field(item, "cards", p, 1, 10, &cards, e) < 0) return -1;
        path_key(pc, p, "cards");
        json_array_foreach(cards, i, c)
        {
            path_idx(pi, pc, i);
            if (check_card(c, pi, e) < 0) return -1;
        }
        rc = check_choices(item, "choices", p, 0, 10, e) < 0 ? -1 : 0;
        break;
    }
    case 5:
        rc = check_location_item(item, p, 1, e);
        break;
    case 6:
        rc = check_contact_info(item, p, e);
        break;
    case 7:
        rc = check_list(item, p, e);
        break;
    default:
        rc = check_template(item, p, e);
        break;
    }
    if (rc < 0) return -1;
    /* siblings */
    if (map_of(msg, "explicit_channel_message", field_name, JSON_STRING, e) < 0 ||
        map_of(msg, "explicit_channel_omni_message", field_name, JSON_OBJECT, e) < 0 ||
        map_of(msg, "channel_specific_message", field_name, JSON_OBJECT, e) < 0)
        return -1;
    json_t *agent = NULL;
    int got = opt_obj(msg, "agent", field_name, &agent, e);
    if (got < 0) return -1;
    if (got) {
        path_key(p, field_name, "agent");
        if (opt_str(agent, "display_name", p, 256, NULL, e) < 0 ||
            opt_enum(agent, "type", p, agent_types, e) < 0 ||
            opt_url(agent, "picture_url", p, e) < 0)
            return -1;
    }
    return 0;
}

static const char *const contact_types[] = {"text_message",
                                            "media_message",
                                            "location_message",
                                            "choice_response_message",
                                            "media_card_message",
                                            "fallback_message",
                                            "product_response_message",
                                            "channel_specific_message",
                                            NULL};
static const char *const contact_siblings[] = {"reply_to", NULL};

int convo_message_check_contact(json_t *msg, const char *field_name, err_t *e)
{
    char p[PATH_LEN];
    json_t *item = NULL;
    int which = message_item(msg, field_name, contact_types, contact_siblings, &item, p, e);
    if (which < 0) return -1;
    int rc = 0;
    switch (which) {
    case 0:
        rc = check_text_item(item, p, 65536, e);
        break;
    case 1:
        rc = check_media(item, p, e);
        break;
    case 2:
        rc = check_location_item(item, p, 0, e);
        break;
    case 3:
        rc = (need_str(item, "message_id", p, 128, NULL, e) < 0 ||
              need_str(item, "postback_data", p, 4096, NULL, e) < 0)
                 ? -1
                 : 0;
        break;
    case 4:
        rc = (need_url(item, "url", p, e) < 0 || opt_str(item, "caption", p, 4096, NULL, e) < 0)
                 ? -1
                 : 0;
        break;
    case 5: {
        json_t *reason = NULL;
        rc = (opt_str(item, "raw_message", p, 0, NULL, e) < 0 ||
              opt_obj(item, "reason", p, &reason, e) < 0)
                 ? -1
                 : 0;
        break;
    }
    case 6: {
        json_t *arr = NULL, *it = NULL;
        size_t i;
        char pa[PATH_LEN], pi[PATH_LEN];
        if (arr_field(item, "products", p, 1, (size_t)-1, &arr, e) < 0) return -1;
        path_key(pa, p, "products");
        json_array_foreach(arr, i, it)
        {
            path_idx(pi, pa, i);
            if (!json_is_object(it))
                return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object, got %s", pi,
                               jsonx_type_name(it));
            if (check_product(it, pi, e) < 0) return -1;
        }
        rc = (opt_str(item, "text", p, 4096, NULL, e) < 0 ||
              opt_str(item, "catalog_id", p, 256, NULL, e) < 0)
                 ? -1
                 : 0;
        break;
    }
    default: {
        json_t *inner = NULL;
        rc = (need_str(item, "message_type", p, 64, NULL, e) < 0 ||
              need_obj(item, "message", p, &inner, e) < 0)
                 ? -1
                 : 0;
        break;
    }
    }
    if (rc < 0) return -1;
    json_t *reply = NULL;
    int got = opt_obj(msg, "reply_to", field_name, &reply, e);
    if (got < 0) return -1;
    if (got) {
        path_key(p, field_name, "reply_to");
        if (need_str(reply, "message_id", p, 128, NULL, e) < 0) return -1;
    }
    return 0;
}

/* ================= storage ================= */

#define MSG_COLS                                                                                   \
    "id, direction, channel, identity, identity_app_id, contact_id, conversation_id, "             \
    "accept_time, kind, content, metadata, injected, sender_id, processing_mode, status, "         \
    "status_time, status_reason"

static const char *text_or(store_stmt_t *st, int col, const char *def)
{
    const char *s = store_col_text(st, col);
    return s ? s : def;
}

/* ConversationMessage from a row of MSG_COLS. */
static json_t *message_json(store_stmt_t *st, int with_metadata)
{
    json_t *m = json_object();
    json_object_set_new(m, "id", json_string(text_or(st, 0, "")));
    json_object_set_new(m, "direction", json_string(text_or(st, 1, "")));
    const char *channel = text_or(st, 2, "");
    if (*channel) {
        json_t *ci = json_pack("{s:s, s:s}", "channel", channel, "identity", text_or(st, 3, ""));
        const char *ci_app = text_or(st, 4, "");
        if (*ci_app) json_object_set_new(ci, "app_id", json_string(ci_app));
        json_object_set_new(m, "channel_identity", ci);
    }
    if (!store_col_is_null(st, 5))
        json_object_set_new(m, "contact_id", json_string(text_or(st, 5, "")));
    if (!store_col_is_null(st, 6))
        json_object_set_new(m, "conversation_id", json_string(text_or(st, 6, "")));
    json_object_set_new(m, "accept_time", convo_time_json(store_col_int(st, 7)));
    json_t *content = json_loads(text_or(st, 9, "{}"), 0, NULL);
    json_object_set_new(m, text_or(st, 8, "app_message"), content ? content : json_object());
    if (with_metadata) json_object_set_new(m, "metadata", json_string(text_or(st, 10, "")));
    json_object_set_new(m, "injected", json_boolean(store_col_int(st, 11)));
    const char *sender = text_or(st, 12, "");
    if (*sender) json_object_set_new(m, "sender_id", json_string(sender));
    json_object_set_new(m, "processing_mode", json_string(text_or(st, 13, "CONVERSATION")));
    const char *status = text_or(st, 14, "");
    if (*status) {
        json_t *ms = json_pack("{s:s, s:o}", "status", status, "event_time",
                               convo_time_json(store_col_int(st, 15)));
        if (!store_col_is_null(st, 16))
            json_object_set_new(ms, "reason", json_string(text_or(st, 16, "")));
        json_object_set_new(m, "message_status", ms);
    }
    return m;
}

static int status_rank(const char *s)
{
    static const char *const order[] = {
        "", "QUEUED", "SWITCHING_CHANNEL", "QUEUED_ON_CHANNEL", "DELIVERED", "READ", NULL};
    if (strcmp(s, "FAILED") == 0) return 100;
    for (int i = 0; order[i]; i++)
        if (strcmp(s, order[i]) == 0) return i;
    return 0;
}

int convo_message_set_status(const convo_ctx_t *cx, const char *id, const char *status,
                             const char *reason, const char *channel, const char *identity,
                             const char *identity_app_id, err_t *e)
{
    store_stmt_t *st =
        store_query(cx->conn, e, "SELECT status FROM messages WHERE id = $1 AND project_id = $2",
                    "ss", id, cx->project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    int have = rc == 1 ? status_rank(text_or(st, 0, "")) : 0;
    store_done(st);
    if (rc <= 0) return rc < 0 ? -1 : err_set(e, ERR_NOT_FOUND, "message %s not found", id);
    int want = status_rank(status);
    /* A new channel attempt (SWITCHING_CHANNEL, QUEUED_ON_CHANNEL on the next channel) may
     * follow anything but a final state; final states never move. */
    if (have >= 100 || have == status_rank("READ") ||
        (want <= have && !(want == status_rank("QUEUED_ON_CHANNEL") && channel)))
        return 0;
    return store_exec(cx->conn, e,
                      "UPDATE messages SET status = $1, status_time = $2, status_reason = $3, "
                      "channel = COALESCE($4, channel), identity = COALESCE($5, identity), "
                      "identity_app_id = COALESCE($6, identity_app_id) WHERE id = $7",
                      "sisssss", status, clock_now_ms(), reason, channel, identity, identity_app_id,
                      id) < 0
               ? -1
               : 1;
}

int convo_message_insert(const convo_ctx_t *cx, const convo_message_row_t *m,
                         char id_out[ULID_LEN + 1], err_t *e)
{
    if (!m->app_id || !m->direction || !m->kind || (!m->content && !m->content_text))
        return err_set(e, ERR_INTERNAL,
                       "convo_message_insert: app_id, direction, kind and "
                       "content are required");
    char *dumped = m->content_text ? NULL : jsonx_dump(m->content);
    const char *content = m->content_text ? m->content_text : dumped;
    if (!content) return err_set(e, ERR_INTERNAL, "cannot serialise message content");
    char id[ULID_LEN + 1];
    ulid_new(id);
    const char *status = m->status ? m->status : "";
    int64_t rc = store_exec(
        cx->conn, e,
        "INSERT INTO messages (id, project_id, app_id, conversation_id, contact_id, direction, "
        "channel, identity, identity_app_id, accept_time, kind, content, metadata, injected, "
        "sender_id, processing_mode, status, status_time, status_reason, correlation_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
        "CASE WHEN $17 = '' THEN NULL ELSE $18 END, $19, $20)",
        "sssssssssisssdsssiss", id, cx->project_id, m->app_id, m->conversation_id, m->contact_id,
        m->direction, m->channel ? m->channel : "", m->identity ? m->identity : "",
        m->identity_app_id ? m->identity_app_id : "", m->accept_time, m->kind, content,
        m->metadata ? m->metadata : "", m->injected ? 1 : 0, m->sender_id ? m->sender_id : "",
        m->processing_mode ? m->processing_mode : "CONVERSATION", status, m->status_time,
        *status ? m->status_reason : NULL, m->correlation_id ? m->correlation_id : "");
    free(dumped);
    if (rc < 0) return -1;
    if (m->conversation_id) {
        int to_app = strcmp(m->direction, "TO_APP") == 0;
        if (store_exec(cx->conn, e,
                       "UPDATE conversations SET last_received = CASE WHEN $1 = 1 AND "
                       "last_received < $2 THEN $2 ELSE last_received END, updated_at = $3 "
                       "WHERE id = $4 AND project_id = $5",
                       "diiss", to_app, m->accept_time, clock_now_ms(), m->conversation_id,
                       cx->project_id) < 0)
            return -1;
    }
    memcpy(id_out, id, ULID_LEN + 1);
    return 0;
}

json_t *convo_message_get(const convo_ctx_t *cx, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT " MSG_COLS " FROM messages WHERE id = $1 AND project_id = $2", "ss",
        id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *m = rc == 1 ? message_json(st, 1) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "message %s not found", id);
    return m;
}

int convo_message_last(const convo_ctx_t *cx, const char *conversation_id, json_t **out, err_t *e)
{
    store_stmt_t *st =
        store_query(cx->conn, e,
                    "SELECT " MSG_COLS " FROM messages WHERE conversation_id = $1 AND "
                    "project_id = $2 ORDER BY accept_time DESC, id DESC LIMIT 1",
                    "ss", conversation_id, cx->project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) *out = message_json(st, 1);
    store_done(st);
    return rc;
}

/* ================= the HTTP resource ================= */

static const char *const sources[] = {"CONVERSATION_SOURCE", "DISPATCH_SOURCE", NULL};

static const char *given(const char *s)
{
    return (s && *s) ? s : NULL;
}

/* A query enum: index into values, -1 when absent, -2 with e filled. */
static int query_enum(const char *v, const char *name, const char *const values[], err_t *e)
{
    if (!given(v)) return -1;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], v) == 0) return i;
    char list[256];
    join_list(values, list, sizeof list);
    err_set(e, ERR_INVALID_ARGUMENT, "%s has unknown value \"%.64s\"; expected one of: %s", name, v,
            list);
    return -2;
}

static int check_source(const char *v, err_t *e)
{
    return query_enum(v, "messages_source", sources, e) == -2 ? -1 : 0;
}

static int query_time(const char *v, const char *name, int64_t *out, err_t *e)
{
    if (!given(v)) return 0;
    if (clock_parse_rfc3339(v, out) < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an RFC 3339 time, got \"%.64s\"", name,
                       v);
    return 1;
}

json_t *convo_message_list(const convo_ctx_t *cx, const convo_message_query_t *q, err_t *e)
{
    static const char *const views[] = {"WITH_METADATA", "WITHOUT_METADATA", NULL};
    static const char *const directions[] = {"TO_APP", "TO_CONTACT", NULL};
    static const char *const bools[] = {"false", "true", NULL};
    static const char *const modes[] = {"CONVERSATION", "DISPATCH", NULL};
    convo_page_t page;
    const char *conv = given(q->conversation_id), *contact = given(q->contact_id),
               *app = given(q->app_id), *identity = given(q->channel_identity);
    if ((conv && convo_check_id(conv, "conversation_id", e) < 0) ||
        (contact && convo_check_id(contact, "contact_id", e) < 0) ||
        (app && convo_check_id(app, "app_id", e) < 0))
        return NULL;
    if (identity && strlen(identity) > 256) {
        err_set(e, ERR_INVALID_ARGUMENT, "channel_identity is longer than 256 characters");
        return NULL;
    }
    int channel = -1;
    if (given(q->channel) && (channel = convo_channel_parse(q->channel, "channel", e)) < 0)
        return NULL;
    int direction = -1, view = -1, source = -1, oro = -1;
    if ((direction = query_enum(q->direction, "direction", directions, e)) == -2 ||
        (view = query_enum(q->view, "view", views, e)) == -2 ||
        (source = query_enum(q->messages_source, "messages_source", sources, e)) == -2 ||
        (oro = query_enum(q->only_recipient_originated, "only_recipient_originated", bools, e)) ==
            -2)
        return NULL;
    int64_t start = INT64_MIN, end = INT64_MAX;
    if (query_time(q->start_time, "start_time", &start, e) < 0 ||
        query_time(q->end_time, "end_time", &end, e) < 0)
        return NULL;
    if (end < start) {
        err_set(e, ERR_INVALID_ARGUMENT, "end_time (%s) is before start_time (%s)", q->end_time,
                q->start_time);
        return NULL;
    }
    if (convo_page_parse(q->page_size, q->page_token, 10, 1000, &page, e) < 0) return NULL;

    const char *dir = direction >= 0 ? directions[direction] : NULL;
    const char *ch = channel >= 0 ? convo_channel_names[channel] : NULL;
    const char *mode = source >= 0 ? modes[source] : NULL;
    int only_to_app = oro == 1;
#define MSG_WHERE                                                                                  \
    " FROM messages WHERE project_id = $1 AND ($2 IS NULL OR conversation_id = $2) AND "           \
    "($3 IS NULL OR contact_id = $3) AND ($4 IS NULL OR app_id = $4) AND "                         \
    "($5 IS NULL OR identity = $5) AND ($6 IS NULL OR channel = $6) AND "                          \
    "($7 IS NULL OR direction = $7) AND accept_time >= $8 AND accept_time < $9 AND "               \
    "($10 IS NULL OR processing_mode = $10) AND ($11 = 0 OR direction = 'TO_APP')"
    int64_t total = 0;
    store_stmt_t *st =
        store_query(cx->conn, e, "SELECT COUNT(*)" MSG_WHERE, "sssssssiisd", cx->project_id, conv,
                    contact, app, identity, ch, dir, start, end, mode, only_to_app);
    if (!st) return NULL;
    int rc = store_step(st, e);
    if (rc == 1) total = store_col_int(st, 0);
    store_done(st);
    if (rc < 0) return NULL;

    st =
        store_query(cx->conn, e, "SELECT " MSG_COLS MSG_WHERE " AND id > $12 ORDER BY id LIMIT $13",
                    "sssssssiisdsi", cx->project_id, conv, contact, app, identity, ch, dir, start,
                    end, mode, only_to_app, page.after, page.size + 1);
#undef MSG_WHERE
    if (!st) return NULL;
    json_t *arr = json_array();
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, message_json(st, view != 1));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return convo_page_result(arr, "messages", &page, total, "id");
}

json_t *convo_message_read(const convo_ctx_t *cx, const char *id, const char *messages_source,
                           err_t *e)
{
    if (check_source(messages_source, e) < 0) return NULL;
    return convo_message_get(cx, id, e);
}

json_t *convo_message_update(const convo_ctx_t *cx, const char *id, const char *messages_source,
                             json_t *body, err_t *e)
{
    const char *metadata = NULL;
    if (check_source(messages_source, e) < 0 ||
        jsonx_require(convo_str_field(body, "metadata", "metadata", 1024, &metadata, e), "metadata",
                      e) < 0)
        return NULL;
    int64_t n = store_exec(cx->conn, e,
                           "UPDATE messages SET metadata = $1 WHERE id = $2 AND project_id = $3",
                           "sss", metadata, id, cx->project_id);
    if (n < 0) return NULL;
    if (n == 0) {
        err_set(e, ERR_NOT_FOUND, "message %s not found", id);
        return NULL;
    }
    return convo_message_get(cx, id, e);
}

json_t *convo_message_delete(const convo_ctx_t *cx, const char *id, const char *messages_source,
                             err_t *e)
{
    if (check_source(messages_source, e) < 0) return NULL;
    /* A deleted message is a change to the contact's transcript: MESSAGE_DELETE on the event
     * stream (no Sinch callback) lets the contact center's GDPR audit log see it. */
    if (store_begin(cx->conn, e) < 0) return NULL;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT app_id, coalesce(contact_id, ''), "
                                   "coalesce(conversation_id, '') FROM messages WHERE id = $1 "
                                   "AND project_id = $2",
                                   "ss", id, cx->project_id);
    int rc = st ? store_step(st, e) : -1;
    char *note = NULL, app[ULID_LEN + 1] = "";
    if (rc == 1) {
        snprintf(app, sizeof app, "%s", store_col_text(st, 0));
        json_t *o = json_pack("{s:s, s:s, s:s}", "message_id", id, "contact_id",
                              store_col_text(st, 1), "conversation_id", store_col_text(st, 2));
        note = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "message %s not found", id);
    if (rc != 1 ||
        store_exec(cx->conn, e, "DELETE FROM messages WHERE id = $1 AND project_id = $2", "ss", id,
                   cx->project_id) < 0 ||
        stream_append(cx->conn, cx->project_id, app, "MESSAGE_DELETE", note, cx->actor, e) < 0 ||
        store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        free(note);
        return NULL;
    }
    free(note);
    return json_object();
}
