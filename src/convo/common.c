/* common.c: helpers shared by the Conversation API resources (see convo.h). */
#include "convo/convo.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/sec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const convo_channel_names[] = {"SMS",     "WHATSAPP", "MESSENGER", "INSTAGRAM",
                                           "VIBERBM", "TELEGRAM", "RCS",       NULL};

static const char *const unsupported_channels[] = {"MMS",    "KAKAOTALK", "KAKAOTALKCHAT", "LINE",
                                                   "WECHAT", "APPLEBC",   "VIBER",         NULL};

int convo_channel_parse(const char *s, const char *field, err_t *e)
{
    for (int i = 0; convo_channel_names[i]; i++)
        if (strcmp(s, convo_channel_names[i]) == 0) return i;
    for (int i = 0; unsupported_channels[i]; i++)
        if (strcmp(s, unsupported_channels[i]) == 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: channel %s is not supported by Parley (supported: SMS, WHATSAPP, "
                           "MESSENGER, INSTAGRAM, VIBERBM, TELEGRAM, RCS)",
                           field, s);
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "%s: unknown channel \"%.40s\" (supported: SMS, WHATSAPP, MESSENGER, INSTAGRAM, "
                   "VIBERBM, TELEGRAM, RCS)",
                   field, s);
}

int convo_channel_app_scoped(convo_channel_t ch)
{
    return ch == CONVO_MESSENGER || ch == CONVO_INSTAGRAM || ch == CONVO_VIBERBM;
}

json_t *convo_col_strings(store_stmt_t *st, err_t *e)
{
    if (!st) return NULL;
    json_t *out = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(out, json_string(store_col_text(st, 0)));
    store_done(st);
    if (rc < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *convo_time_json(int64_t ms)
{
    char ts[40];
    clock_format_rfc3339(ms, ts, sizeof ts);
    return json_string(ts);
}

int convo_str_field(json_t *obj, const char *key, const char *name, size_t max_len,
                    const char **out, err_t *e)
{
    const char *s;
    int got = jsonx_str(obj, key, name, &s, e);
    if (got <= 0) return got;
    if (strlen(s) > max_len)
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s is longer than %zu characters", name,
                       max_len);
    *out = s;
    return 1;
}

int convo_check_id(const char *id, const char *field, err_t *e)
{
    if (!id || !ulid_valid(id))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s \"%.40s\" is not a valid id (26-character ULID)", field, id ? id : "");
    return 0;
}

static const struct {
    const char *name, *sql;
} convo_kinds[] = {
    [CONVO_KIND_APP] = {"app", "SELECT 1 FROM apps WHERE id = $1 AND project_id = $2"},
    [CONVO_KIND_CONTACT] = {"contact", "SELECT 1 FROM contacts WHERE id = $1 AND project_id = $2"},
    [CONVO_KIND_CONVERSATION] = {"conversation",
                                 "SELECT 1 FROM conversations WHERE id = $1 AND project_id = $2"},
};

int convo_exists(const convo_ctx_t *cx, convo_kind_t kind, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e, convo_kinds[kind].sql, "ss", id, cx->project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    store_done(st);
    return rc;
}

int convo_require(const convo_ctx_t *cx, convo_kind_t kind, const char *id, err_t *e)
{
    int rc = convo_exists(cx, kind, id, e);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "%s %s not found", convo_kinds[kind].name, id);
    return rc == 1 ? 0 : -1;
}

int convo_norm_id(const char *id, const char *field, char out[ULID_LEN + 1], err_t *e)
{
    if (convo_check_id(id, field, e) < 0) return -1;
    for (int i = 0; i <= ULID_LEN; i++)
        out[i] = (char)toupper((unsigned char)id[i]);
    return 0;
}

int convo_page_parse(const char *page_size, const char *page_token, int64_t def, int64_t max,
                     convo_page_t *out, err_t *e)
{
    out->size = def;
    out->after[0] = '\0';
    if (page_size && *page_size) {
        char *end;
        long long v = strtoll(page_size, &end, 10);
        if (*end || v < 1 || v > max)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "page_size must be an integer from 1 to %lld, got \"%.20s\"",
                           (long long)max, page_size);
        out->size = v;
    }
    if (page_token && *page_token) {
        char raw[64];
        int n = sec_b64url_decode(page_token, raw, sizeof raw - 1);
        if (n != 3 + ULID_LEN || memcmp(raw, "v1:", 3) != 0)
            return err_set(e, ERR_INVALID_ARGUMENT, "page_token is not one this server issued");
        raw[n] = '\0';
        if (!ulid_valid(raw + 3))
            return err_set(e, ERR_INVALID_ARGUMENT, "page_token is not one this server issued");
        memcpy(out->after, raw + 3, ULID_LEN + 1);
    }
    return 0;
}

void convo_page_token(const char *last_id, char out[64])
{
    char raw[40];
    int n = snprintf(raw, sizeof raw, "v1:%s", last_id);
    sec_b64url_encode(raw, (size_t)n, out, 64);
}

json_t *convo_page_result(json_t *arr, const char *key, const convo_page_t *page, int64_t total,
                          const char *id_key)
{
    char token[64] = "";
    if ((int64_t)json_array_size(arr) > page->size) {
        json_array_remove(arr, json_array_size(arr) - 1);
        json_t *last = json_array_get(arr, json_array_size(arr) - 1);
        convo_page_token(json_string_value(json_object_get(last, id_key)), token);
    }
    return json_pack("{s:o, s:s, s:I}", key, arr, "next_page_token", token, "total_size",
                     (json_int_t)total);
}

int convo_mask_parse(char *const raw[], int nraw, const char *const allowed[], convo_mask_t *m,
                     err_t *e)
{
    m->n = 0;
    for (int r = 0; r < nraw; r++) {
        for (char *p = raw[r]; p && *p;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = '\0';
            while (*p == ' ')
                p++;
            if (*p) {
                int ok = 0;
                for (int i = 0; allowed[i] && !ok; i++)
                    ok = strcmp(p, allowed[i]) == 0;
                if (!ok) {
                    char list[400] = "";
                    size_t off = 0;
                    for (int i = 0; allowed[i] && off < sizeof list - 2; i++)
                        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                                i ? ", " : "", allowed[i]);
                    return err_set(e, ERR_INVALID_ARGUMENT,
                                   "update_mask: unknown path \"%.60s\" (allowed: %s)", p, list);
                }
                if (m->n == CONVO_MASK_MAX)
                    return err_set(e, ERR_INVALID_ARGUMENT, "update_mask: too many paths");
                m->path[m->n++] = p;
            }
            p = comma ? comma + 1 : NULL;
        }
    }
    return 0;
}

int convo_mask_wants(const convo_mask_t *m, json_t *body, const char *path)
{
    if (m->n == 0) return json_object_get(body, path) != NULL;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->path[i], path) == 0) return 1;
    return 0;
}

char *convo_seal_json(const convo_ctx_t *cx, const json_t *v)
{
    char *text = jsonx_dump(v);
    if (!text) return NULL;
    char *sealed = sec_seal(cx->seal_key, text);
    free(text);
    return sealed;
}

json_t *convo_open_json(const convo_ctx_t *cx, const char *sealed)
{
    char *text = sealed ? sec_open(cx->seal_key, sealed) : NULL;
    if (!text) return NULL;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    free(text);
    return v;
}

char *convo_mask_secret(const char *secret)
{
    size_t n = strlen(secret);
    char *out = xstrdup(secret);
    size_t keep_head = n >= 12 ? 3 : 0, keep_tail = n >= 12 ? 2 : 0;
    for (size_t i = keep_head; i + keep_tail < n; i++)
        out[i] = '*';
    return out;
}
