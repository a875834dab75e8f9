/* apps.c: the Conversation API's apps (see apps.h). An app is one row of `apps` plus its
 * channel credentials in `app_credentials`, in priority order. A request is parsed and
 * validated completely into an app_state_t (starting from the defaults for a create,
 * from the stored app for an update) before anything is written; the write is one
 * transaction. Credential objects and callback secrets are stored sealed; responses mask
 * them, and only convo_app_get_internal shows them in full. */
#include "convo/apps.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/utf8.h"
#include "base/jsonx.h"
#include "base/nudge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_NAME_MAX        100
#define APP_MAX_CREDENTIALS 50
#define APP_SECRET_MAX      4096
#define APP_IDENT_MAX       256
#define APP_STATE_DESC_MAX  1000

#define RETENTION_TTL_DEFAULT 180
#define RATE_LIMIT_DEFAULT    25
#define QUEUE_OUTBOUND_LIMIT  500000

const char *const convo_app_mask_paths[] = {"display_name",
                                            "channel_credentials",
                                            "conversation_metadata_report_view",
                                            "retention_policy",
                                            "dispatch_retention_policy",
                                            "processing_mode",
                                            "smart_conversation",
                                            "callback_settings",
                                            "delivery_report_based_fallback",
                                            "message_retry_settings",
                                            "persist_message_status",
                                            "message_search",
                                            NULL};

static const char *const report_views[] = {"NONE", "FULL", NULL};
static const char *const retention_types[] = {"MESSAGE_EXPIRE_POLICY", "CONVERSATION_EXPIRE_POLICY",
                                              "PERSIST_RETENTION_POLICY", NULL};
enum { RET_MESSAGE = 0, RET_CONVERSATION, RET_PERSIST };
static const char *const dispatch_retention_types[] = {"MESSAGE_EXPIRE_POLICY", NULL};
static const char *const processing_modes[] = {"CONVERSATION", "DISPATCH", NULL};
enum { MODE_CONVERSATION = 0, MODE_DISPATCH };
static const char *const credential_states[] = {"PENDING", "ACTIVE", "FAILING", NULL};

/* ---- credential kinds: which object each channel takes, and its fields ---- */

typedef enum {
    KIND_STATIC_BEARER = 0,
    KIND_STATIC_TOKEN,
    KIND_INSTAGRAM,
    KIND_TELEGRAM,
    KIND_COUNT
} cred_kind_t;

static const char *const kind_keys[] = {"static_bearer", "static_token", "instagram_credentials",
                                        "telegram_credentials", NULL};
static const char *const kind_shapes[] = {"{claimed_identity, token}", "{token}",
                                          "{token, business_account_id?}", "{token}"};

/* Every credential object the SDK knows: a channel's object must be the only one present. */
static const char *const all_credential_keys[] = {"static_bearer",
                                                  "static_token",
                                                  "mms_credentials",
                                                  "instagram_credentials",
                                                  "telegram_credentials",
                                                  "kakaotalk_credentials",
                                                  "kakaotalkchat_credentials",
                                                  "line_credentials",
                                                  "line_enterprise_credentials",
                                                  "wechat_credentials",
                                                  "applebc_credentials",
                                                  NULL};

typedef struct {
    const char *name;
    int required;
    size_t max_len;
    int secret; /* masked in responses */
} cred_field_t;

static const cred_field_t bearer_fields[] = {
    {"claimed_identity", 1, APP_IDENT_MAX, 0}, {"token", 1, APP_SECRET_MAX, 1}, {NULL, 0, 0, 0}};
static const cred_field_t token_fields[] = {{"token", 1, APP_SECRET_MAX, 1}, {NULL, 0, 0, 0}};
static const cred_field_t instagram_fields[] = {
    {"token", 1, APP_SECRET_MAX, 1}, {"business_account_id", 0, APP_IDENT_MAX, 0}, {NULL, 0, 0, 0}};
static const cred_field_t *const kind_fields[] = {bearer_fields, token_fields, instagram_fields,
                                                  token_fields};

static cred_kind_t channel_kind(int ch)
{
    switch (ch) {
    case CONVO_MESSENGER:
        return KIND_STATIC_TOKEN;
    case CONVO_INSTAGRAM:
        return KIND_INSTAGRAM;
    case CONVO_TELEGRAM:
        return KIND_TELEGRAM;
    default:
        return KIND_STATIC_BEARER; /* SMS, WHATSAPP, RCS, VIBERBM */
    }
}

static int kind_of_key(const char *key)
{
    for (int k = 0; kind_keys[k]; k++)
        if (strcmp(kind_keys[k], key) == 0) return k;
    return -1;
}

static int enum_index(const char *const values[], const char *s)
{
    for (int i = 0; s && values[i]; i++)
        if (strcmp(values[i], s) == 0) return i;
    return 0;
}

/* A secret sent back exactly as Parley masked it means "keep the stored one". */
static int is_masked_copy(const char *sent, const char *stored)
{
    if (!sent || !stored || !strchr(sent, '*')) return 0;
    char *masked = convo_mask_secret(stored);
    int same = strcmp(masked, sent) == 0;
    free(masked);
    return same;
}

static json_t *masked_string(const char *secret)
{
    char *m = convo_mask_secret(secret);
    json_t *v = json_string(m);
    free(m);
    return v;
}

/* ---- the parsed app ---- */

typedef struct {
    int channel;
    int64_t ordinal;
    json_t *cred;          /* normalised credential object (owned) */
    char *callback_secret; /* owned; NULL when absent */
} cred_in_t;

typedef struct {
    char *display_name; /* owned */
    int report_view, retention_type, processing_mode;
    int64_t retention_ttl, dispatch_ttl;
    json_t *settings; /* owned: the stored form (callback secret sealed) */
    int replace_creds;
    cred_in_t *creds;
    size_t ncreds;
} app_state_t;

static void state_init(app_state_t *st)
{
    memset(st, 0, sizeof *st);
    st->report_view = 0;
    st->retention_type = RET_MESSAGE;
    st->retention_ttl = RETENTION_TTL_DEFAULT;
    st->dispatch_ttl = 0;
    st->processing_mode = MODE_CONVERSATION;
    st->settings = json_object();
}

static void state_free(app_state_t *st)
{
    free(st->display_name);
    json_decref(st->settings);
    for (size_t i = 0; i < st->ncreds; i++) {
        json_decref(st->creds[i].cred);
        free(st->creds[i].callback_secret);
    }
    free(st->creds);
    memset(st, 0, sizeof *st);
}

/* The stored credential (internal view) with this channel and ordinal, or NULL. */
static json_t *find_cred(json_t *creds, const char *channel, int64_t ordinal)
{
    size_t i;
    json_t *c = NULL;
    json_array_foreach(creds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "channel")), channel) == 0 &&
            json_integer_value(json_object_get(c, "credential_ordinal_number")) == ordinal)
            return c;
    }
    return NULL;
}

/* One element of channel_credentials -> ci (already counted in the list, so freed with it). */
static int parse_cred(json_t *c, size_t i, cred_in_t *ci, json_t *old_creds, err_t *e)
{
    char path[48], f[160];
    snprintf(path, sizeof path, "channel_credentials[%zu]", i);
    if (!json_is_object(c))
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s must be an object", path);

    const char *chs = NULL;
    snprintf(f, sizeof f, "%s.channel", path);
    if (jsonx_require(jsonx_str(c, "channel", f, &chs, e), f, e) < 0) return -1;
    int ch = convo_channel_parse(chs, f, e);
    if (ch < 0) return -1;
    ci->channel = ch;
    cred_kind_t kind = channel_kind(ch);
    const char *key = kind_keys[kind];

    for (int k = 0; all_credential_keys[k]; k++) {
        json_t *other = json_object_get(c, all_credential_keys[k]);
        if (strcmp(all_credential_keys[k], key) != 0 && other && !json_is_null(other))
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "field %s.%s is not valid for channel %s: channel %s takes %s %s", path,
                           all_credential_keys[k], chs, chs, key, kind_shapes[kind]);
    }
    json_t *obj = NULL;
    snprintf(f, sizeof f, "%s.%s", path, key);
    int got = jsonx_obj(c, key, f, &obj, e);
    if (got < 0) return -1;
    if (!got)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "missing required field %s (channel %s takes %s %s)", f, chs, key,
                       kind_shapes[kind]);

    ci->cred = json_object();
    for (const cred_field_t *fs = kind_fields[kind]; fs->name; fs++) {
        const char *v = NULL;
        snprintf(f, sizeof f, "%s.%s.%s", path, key, fs->name);
        int g = jsonx_str(obj, fs->name, f, &v, e);
        if (g < 0) return -1;
        if (g == 0 || !*v) {
            if (fs->required)
                return err_set(e, ERR_INVALID_ARGUMENT, "missing required field %s", f);
            continue;
        }
        if (utf8_len(v) > fs->max_len)
            return err_set(e, ERR_INVALID_ARGUMENT, "field %s is longer than %zu characters", f,
                           fs->max_len);
        json_object_set_new(ci->cred, fs->name, json_string(v));
    }

    const char *cb = NULL;
    snprintf(f, sizeof f, "%s.callback_secret", path);
    got = jsonx_str(c, "callback_secret", f, &cb, e);
    if (got < 0) return -1;
    if (got && *cb) {
        if (utf8_len(cb) > APP_SECRET_MAX)
            return err_set(e, ERR_INVALID_ARGUMENT, "field %s is longer than %d characters", f,
                           APP_SECRET_MAX);
        ci->callback_secret = xstrdup(cb);
    }

    ci->ordinal = 0;
    snprintf(f, sizeof f, "%s.credential_ordinal_number", path);
    if (jsonx_int(c, "credential_ordinal_number", f, 0, INT32_MAX, &ci->ordinal, e) < 0) return -1;

    /* Secrets sent back exactly as a response masked them keep the stored values, so a
     * client can PATCH what it read without destroying its tokens. */
    json_t *old = find_cred(old_creds, chs, ci->ordinal);
    if (old) {
        json_t *old_obj = json_object_get(old, key);
        for (const cred_field_t *fs = kind_fields[kind]; fs->name; fs++) {
            const char *stored = json_string_value(json_object_get(old_obj, fs->name));
            if (fs->secret &&
                is_masked_copy(json_string_value(json_object_get(ci->cred, fs->name)), stored))
                json_object_set_new(ci->cred, fs->name, json_string(stored));
        }
        const char *stored_cb = json_string_value(json_object_get(old, "callback_secret"));
        if (is_masked_copy(ci->callback_secret, stored_cb)) {
            free(ci->callback_secret);
            ci->callback_secret = xstrdup(stored_cb);
        }
    }
    return 0;
}

static int parse_creds(json_t *arr, app_state_t *st, json_t *old_creds, err_t *e)
{
    size_t n = json_array_size(arr);
    if (n > APP_MAX_CREDENTIALS)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field channel_credentials has %zu entries; at most %d are allowed", n,
                       APP_MAX_CREDENTIALS);
    st->creds = xcalloc(n ? n : 1, sizeof *st->creds);
    st->ncreds = 0;
    st->replace_creds = 1;
    for (size_t i = 0; i < n; i++) {
        cred_in_t *ci = &st->creds[st->ncreds++];
        if (parse_cred(json_array_get(arr, i), i, ci, old_creds, e) < 0) return -1;
        for (size_t j = 0; j < i; j++)
            if (st->creds[j].channel == ci->channel && st->creds[j].ordinal == ci->ordinal)
                return err_set(
                    e, ERR_INVALID_ARGUMENT,
                    "field channel_credentials[%zu] duplicates channel_credentials[%zu]: channel "
                    "%s with credential_ordinal_number %lld is already configured",
                    i, j, convo_channel_names[ci->channel], (long long)ci->ordinal);
    }
    return 0;
}

/* An absent (or null) settings object goes back to its default: not stored. */
static int clear_setting(json_t *settings, const char *key)
{
    json_object_del(settings, key);
    return 0;
}

/* A settings object with one boolean `enabled` (smart_conversation, persist_message_status,
 * message_search). */
static int parse_enabled(json_t *body, const char *key, json_t *settings, err_t *e)
{
    json_t *o = NULL;
    char f[64];
    if (jsonx_obj(body, key, key, &o, e) < 0) return -1;
    if (!o) return clear_setting(settings, key);
    int enabled = 0;
    snprintf(f, sizeof f, "%s.enabled", key);
    if (jsonx_bool(o, "enabled", f, &enabled, e) < 0) return -1;
    json_object_set_new(settings, key, json_pack("{s:b}", "enabled", enabled));
    return 0;
}

static int parse_callback_settings(const convo_ctx_t *cx, json_t *body, json_t *settings, err_t *e)
{
    json_t *o = NULL;
    const char *key = "callback_settings";
    if (jsonx_obj(body, key, key, &o, e) < 0) return -1;
    const char *secret = NULL;
    const char *f = "callback_settings.secret_for_overridden_callback_urls";
    if (o && jsonx_str(o, "secret_for_overridden_callback_urls", f, &secret, e) < 0) return -1;
    if (secret && utf8_len(secret) > APP_SECRET_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s is longer than %d characters", f,
                       APP_SECRET_MAX);
    if (!o) return clear_setting(settings, key);
    if (!secret || !*secret) {
        json_object_set_new(settings, key, json_object());
        return 0;
    }
    /* Sent back as masked: keep the stored secret. */
    const char *old_sealed =
        json_string_value(json_object_get(json_object_get(settings, key), "secret_sealed"));
    json_t *old = old_sealed ? convo_open_json(cx, old_sealed) : NULL;
    int keep = old && is_masked_copy(secret, json_string_value(old));
    json_decref(old);
    if (keep) return 0;
    json_t *s = json_string(secret);
    char *sealed = convo_seal_json(cx, s);
    json_decref(s);
    if (!sealed) return err_set(e, ERR_INTERNAL, "could not seal %s", f);
    json_object_set_new(settings, key, json_pack("{s:s}", "secret_sealed", sealed));
    free(sealed);
    return 0;
}

static int parse_fallback(json_t *body, json_t *settings, err_t *e)
{
    const char *key = "delivery_report_based_fallback";
    json_t *o = NULL;
    if (jsonx_obj(body, key, key, &o, e) < 0) return -1;
    if (!o) return clear_setting(settings, key);
    int enabled = 0;
    int64_t wait = 0;
    if (jsonx_bool(o, "enabled", "delivery_report_based_fallback.enabled", &enabled, e) < 0)
        return -1;
    int got = jsonx_int(o, "delivery_report_waiting_time",
                        "delivery_report_based_fallback.delivery_report_waiting_time", 60, 259200,
                        &wait, e);
    if (got < 0) return -1;
    json_t *v = json_pack("{s:b}", "enabled", enabled);
    if (got) json_object_set_new(v, "delivery_report_waiting_time", json_integer(wait));
    json_object_set_new(settings, key, v);
    return 0;
}

static int parse_retry(json_t *body, json_t *settings, err_t *e)
{
    const char *key = "message_retry_settings";
    json_t *o = NULL;
    if (jsonx_obj(body, key, key, &o, e) < 0) return -1;
    if (!o) return clear_setting(settings, key);
    int64_t d = 0;
    int got =
        jsonx_int(o, "retry_duration", "message_retry_settings.retry_duration", 30, 3600, &d, e);
    if (got < 0) return -1;
    json_t *v = json_object();
    if (got) json_object_set_new(v, "retry_duration", json_integer(d));
    json_object_set_new(settings, key, v);
    return 0;
}

/* Apply the request body to st: with creating, every field present (display_name and
 * channel_credentials required); else the fields mask m selects (convo_mask_wants). */
static int apply_body(const convo_ctx_t *cx, app_state_t *st, json_t *body, const convo_mask_t *m,
                      int creating, json_t *old_creds, err_t *e)
{
    if (creating || convo_mask_wants(m, body, "display_name")) {
        const char *s = NULL;
        if (jsonx_require(jsonx_str(body, "display_name", "display_name", &s, e), "display_name",
                          e) < 0)
            return -1;
        size_t n = utf8_len(s);
        if (n < 1 || n > APP_NAME_MAX)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "field display_name must be 1 to %d characters, got %zu", APP_NAME_MAX,
                           n);
        free(st->display_name);
        st->display_name = xstrdup(s);
    }
    if (creating || convo_mask_wants(m, body, "channel_credentials")) {
        json_t *arr = NULL;
        int got = jsonx_arr(body, "channel_credentials", "channel_credentials", &arr, e);
        if (creating && jsonx_require(got, "channel_credentials", e) < 0) return -1;
        if (got < 0) return -1;
        if (parse_creds(arr, st, old_creds, e) < 0) return -1; /* absent: cleared to [] */
    }
    if (convo_mask_wants(m, body, "conversation_metadata_report_view")) {
        int idx = 0;
        if (jsonx_enum(body, "conversation_metadata_report_view",
                       "conversation_metadata_report_view", report_views, &idx, e) < 0)
            return -1;
        st->report_view = idx;
    }
    if (convo_mask_wants(m, body, "retention_policy")) {
        json_t *o = NULL;
        int type = RET_MESSAGE;
        int64_t ttl = RETENTION_TTL_DEFAULT;
        if (jsonx_obj(body, "retention_policy", "retention_policy", &o, e) < 0) return -1;
        if (jsonx_enum(o, "retention_type", "retention_policy.retention_type", retention_types,
                       &type, e) < 0 ||
            jsonx_int(o, "ttl_days", "retention_policy.ttl_days", 1, 3650, &ttl, e) < 0)
            return -1;
        st->retention_type = type;
        st->retention_ttl = ttl;
    }
    if (convo_mask_wants(m, body, "dispatch_retention_policy")) {
        json_t *o = NULL;
        int type = 0;
        int64_t ttl = 0;
        if (jsonx_obj(body, "dispatch_retention_policy", "dispatch_retention_policy", &o, e) < 0)
            return -1;
        if (jsonx_enum(o, "retention_type", "dispatch_retention_policy.retention_type",
                       dispatch_retention_types, &type, e) < 0 ||
            jsonx_int(o, "ttl_days", "dispatch_retention_policy.ttl_days", 0, 7, &ttl, e) < 0)
            return -1;
        st->dispatch_ttl = ttl;
    }
    if (convo_mask_wants(m, body, "processing_mode")) {
        int idx = MODE_CONVERSATION;
        if (jsonx_enum(body, "processing_mode", "processing_mode", processing_modes, &idx, e) < 0)
            return -1;
        st->processing_mode = idx;
    }
    static const char *const enabled_keys[] = {"smart_conversation", "persist_message_status",
                                               "message_search", NULL};
    for (int i = 0; enabled_keys[i]; i++)
        if (convo_mask_wants(m, body, enabled_keys[i]) &&
            parse_enabled(body, enabled_keys[i], st->settings, e) < 0)
            return -1;
    if (convo_mask_wants(m, body, "callback_settings") &&
        parse_callback_settings(cx, body, st->settings, e) < 0)
        return -1;
    if (convo_mask_wants(m, body, "delivery_report_based_fallback") &&
        parse_fallback(body, st->settings, e) < 0)
        return -1;
    if (convo_mask_wants(m, body, "message_retry_settings") &&
        parse_retry(body, st->settings, e) < 0)
        return -1;

    /* Rules over the resulting state (also after an update). */
    if (st->processing_mode == MODE_DISPATCH && st->retention_type == RET_CONVERSATION)
        return err_set(
            e, ERR_INVALID_ARGUMENT,
            "retention_policy.retention_type CONVERSATION_EXPIRE_POLICY cannot be used with "
            "processing_mode DISPATCH: an app in DISPATCH mode keeps no conversations (use "
            "MESSAGE_EXPIRE_POLICY or PERSIST_RETENTION_POLICY)");
    return 0;
}

/* ---- reading ---- */

#define APP_COLUMNS                                                                                \
    "id, display_name, processing_mode, report_view, retention_type, retention_ttl_days, "         \
    "dispatch_ttl_days, settings"

/* The credentials of an app in priority order: the response shape, masked unless reveal. */
static json_t *load_creds(const convo_ctx_t *cx, const char *app_id, int reveal, err_t *e)
{
    store_stmt_t *st =
        store_query(cx->conn, e,
                    "SELECT channel, ordinal, credential_key, credential_sealed, "
                    "callback_secret_sealed, state_status, state_description, channel_known_id "
                    "FROM app_credentials WHERE app_id = $1 ORDER BY position",
                    "s", app_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        const char *channel = store_col_text(st, 0), *key = store_col_text(st, 2);
        json_t *cred = convo_open_json(cx, store_col_text(st, 3));
        if (!json_is_object(cred)) {
            json_decref(cred);
            cred = NULL;
            if (reveal) {
                rc = err_set(
                    e, ERR_INTERNAL,
                    "a %s credential of app %s cannot be opened (was the secret key changed?)",
                    channel, app_id);
                break;
            }
            cred = json_object(); /* unreadable: show the credential without its fields */
        }
        json_t *c = json_pack("{s:s}", "channel", channel);
        if (!reveal) {
            int kind = kind_of_key(key);
            const char *fkey = NULL;
            json_t *fv = NULL;
            void *tmp;
            json_object_foreach_safe(cred, tmp, fkey, fv)
            {
                int secret = 1; /* fields of an unknown kind are all treated as secrets */
                if (kind >= 0) {
                    secret = 0;
                    for (const cred_field_t *fs = kind_fields[kind]; fs->name; fs++)
                        if (strcmp(fs->name, fkey) == 0) secret = fs->secret;
                }
                if (secret && json_is_string(fv))
                    json_object_set_new(cred, fkey, masked_string(json_string_value(fv)));
            }
        }
        json_object_set_new(c, key, cred);
        if (!store_col_is_null(st, 4)) {
            json_t *cb = convo_open_json(cx, store_col_text(st, 4));
            if (json_is_string(cb))
                json_object_set_new(c, "callback_secret",
                                    reveal ? json_incref(cb)
                                           : masked_string(json_string_value(cb)));
            else if (reveal) {
                json_decref(cb);
                json_decref(c);
                rc = err_set(e, ERR_INTERNAL,
                             "the callback secret of a %s credential of app %s cannot be opened",
                             channel, app_id);
                break;
            }
            json_decref(cb);
        }
        json_object_set_new(c, "credential_ordinal_number", json_integer(store_col_int(st, 1)));
        json_object_set_new(c, "state",
                            json_pack("{s:s, s:s}", "status", store_col_text(st, 5), "description",
                                      store_col_text(st, 6)));
        if (!store_col_is_null(st, 7))
            json_object_set_new(c, "channel_known_id", json_string(store_col_text(st, 7)));
        json_array_append_new(arr, c);
    }
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *load_settings(const char *text)
{
    json_t *s = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(s)) {
        json_decref(s);
        s = json_object();
    }
    return s;
}

/* One apps row (APP_COLUMNS) -> AppResponse without channel_credentials. */
static json_t *row_json(const convo_ctx_t *cx, store_stmt_t *st, int reveal, err_t *e)
{
    json_t *settings = load_settings(store_col_text(st, 7));
    json_t *app = json_pack(
        "{s:s, s:s, s:[], s:s, s:{s:i, s:i, s:i}, s:{s:s, s:I}, s:{s:s, s:I}, s:s}", "id",
        store_col_text(st, 0), "display_name", store_col_text(st, 1), "channel_credentials",
        "conversation_metadata_report_view", store_col_text(st, 3), "rate_limits", "inbound",
        RATE_LIMIT_DEFAULT, "outbound", RATE_LIMIT_DEFAULT, "webhooks", RATE_LIMIT_DEFAULT,
        "retention_policy", "retention_type", store_col_text(st, 4), "ttl_days",
        (json_int_t)store_col_int(st, 5), "dispatch_retention_policy", "retention_type",
        "MESSAGE_EXPIRE_POLICY", "ttl_days", (json_int_t)store_col_int(st, 6), "processing_mode",
        store_col_text(st, 2));
    json_t *v = json_object_get(settings, "smart_conversation");
    json_object_set_new(app, "smart_conversation",
                        v ? json_incref(v) : json_pack("{s:b}", "enabled", 0));
    json_object_set_new(
        app, "queue_stats",
        json_pack("{s:i, s:i}", "outbound_size", 0, "outbound_limit", QUEUE_OUTBOUND_LIMIT));
    static const char *const enabled_keys[] = {"persist_message_status", "message_search", NULL};
    for (int i = 0; enabled_keys[i]; i++) {
        v = json_object_get(settings, enabled_keys[i]);
        json_object_set_new(app, enabled_keys[i],
                            v ? json_incref(v) : json_pack("{s:b}", "enabled", 0));
    }
    json_t *cbs = json_object();
    const char *sealed = json_string_value(
        json_object_get(json_object_get(settings, "callback_settings"), "secret_sealed"));
    if (sealed) {
        json_t *secret = convo_open_json(cx, sealed);
        if (json_is_string(secret))
            json_object_set_new(cbs, "secret_for_overridden_callback_urls",
                                reveal ? json_incref(secret)
                                       : masked_string(json_string_value(secret)));
        else if (reveal) {
            json_decref(secret);
            json_decref(cbs);
            json_decref(settings);
            json_decref(app);
            err_set(e, ERR_INTERNAL, "the callback settings secret of app %s cannot be opened",
                    store_col_text(st, 0));
            return NULL;
        }
        json_decref(secret);
    }
    json_object_set_new(app, "callback_settings", cbs);
    static const char *const optional_keys[] = {"delivery_report_based_fallback",
                                                "message_retry_settings", NULL};
    for (int i = 0; optional_keys[i]; i++)
        if ((v = json_object_get(settings, optional_keys[i])))
            json_object_set(app, optional_keys[i], v);
    json_decref(settings);
    return app;
}

static json_t *app_fetch(const convo_ctx_t *cx, const char *app_id, int reveal, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT " APP_COLUMNS " FROM apps WHERE id = $1 AND project_id = $2", "ss",
        app_id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *app = NULL;
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "app %s not found", app_id);
    if (rc == 1) app = row_json(cx, st, reveal, e);
    store_done(st);
    if (!app) return NULL;
    json_t *creds = load_creds(cx, app_id, reveal, e);
    if (!creds) {
        json_decref(app);
        return NULL;
    }
    json_object_set_new(app, "channel_credentials", creds);
    return app;
}

json_t *convo_app_get(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    return app_fetch(cx, app_id, 0, e);
}

json_t *convo_app_get_internal(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    return app_fetch(cx, app_id, 1, e);
}

json_t *convo_app_list(const convo_ctx_t *cx, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT " APP_COLUMNS " FROM apps WHERE project_id = $1 ORDER BY id", "s",
        cx->project_id);
    if (!st) return NULL;
    json_t *apps = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(apps, row_json(cx, st, 0, e));
    store_done(st);
    size_t i;
    json_t *app = NULL;
    json_array_foreach(apps, i, app)
    {
        if (rc < 0) break;
        json_t *creds = load_creds(cx, json_string_value(json_object_get(app, "id")), 0, e);
        if (!creds)
            rc = -1;
        else
            json_object_set_new(app, "channel_credentials", creds);
    }
    if (rc < 0) {
        json_decref(apps);
        return NULL;
    }
    return json_pack("{s:o}", "apps", apps);
}

/* The stored app (for an update) -> st. */
static int load_state(const convo_ctx_t *cx, const char *app_id, app_state_t *st, err_t *e)
{
    store_stmt_t *q = store_query(
        cx->conn, e, "SELECT " APP_COLUMNS " FROM apps WHERE id = $1 AND project_id = $2", "ss",
        app_id, cx->project_id);
    if (!q) return -1;
    int rc = store_step(q, e);
    if (rc == 0) rc = err_set(e, ERR_NOT_FOUND, "app %s not found", app_id);
    if (rc == 1) {
        st->display_name = xstrdup(store_col_text(q, 1));
        st->processing_mode = enum_index(processing_modes, store_col_text(q, 2));
        st->report_view = enum_index(report_views, store_col_text(q, 3));
        st->retention_type = enum_index(retention_types, store_col_text(q, 4));
        st->retention_ttl = store_col_int(q, 5);
        st->dispatch_ttl = store_col_int(q, 6);
        json_decref(st->settings);
        st->settings = load_settings(store_col_text(q, 7));
    }
    store_done(q);
    return rc < 0 ? -1 : 0;
}

/* ---- writing ---- */

static int insert_creds(const convo_ctx_t *cx, const char *app_id, const app_state_t *st,
                        json_t *old_creds, int64_t now, err_t *e)
{
    for (size_t i = 0; i < st->ncreds; i++) {
        const cred_in_t *ci = &st->creds[i];
        const char *channel = convo_channel_names[ci->channel];
        const char *key = kind_keys[channel_kind(ci->channel)];
        char *sealed = convo_seal_json(cx, ci->cred), *cb_sealed = NULL;
        if (ci->callback_secret) {
            json_t *s = json_string(ci->callback_secret);
            cb_sealed = convo_seal_json(cx, s);
            json_decref(s);
        }
        if (!sealed || (ci->callback_secret && !cb_sealed)) {
            free(sealed);
            free(cb_sealed);
            return err_set(e, ERR_INTERNAL, "could not seal channel_credentials[%zu]", i);
        }
        /* An unchanged credential keeps what the provider check found. */
        const char *status = "PENDING", *desc = "", *known = NULL;
        json_t *old = find_cred(old_creds, channel, ci->ordinal);
        if (old && json_equal(json_object_get(old, key), ci->cred)) {
            json_t *state = json_object_get(old, "state");
            status = json_string_value(json_object_get(state, "status"));
            desc = json_string_value(json_object_get(state, "description"));
            known = json_string_value(json_object_get(old, "channel_known_id"));
        }
        int64_t n = store_exec(
            cx->conn, e,
            "INSERT INTO app_credentials (app_id, position, channel, ordinal, credential_key, "
            "credential_sealed, callback_secret_sealed, state_status, state_description, "
            "channel_known_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            "sdsissssssi", app_id, (int)i, channel, ci->ordinal, key, sealed, cb_sealed, status,
            desc, known, now);
        free(sealed);
        free(cb_sealed);
        if (n < 0) return -1;
    }
    return 0;
}

/* A credential that is new or changed is PENDING until the provider confirms it: queue a
 * 'check' job for each (the dispatcher runs the channel adapter's check and records
 * ACTIVE or FAILING; for SMS the check is the SMPP bind). */
static int queue_checks(const convo_ctx_t *cx, const char *app_id, int64_t now, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT channel, ordinal FROM app_credentials WHERE app_id = $1 "
                                   "AND state_status = 'PENDING'",
                                   "s", app_id);
    if (!st) return -1;
    json_t *todo = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(todo, json_pack("{s:s, s:I}", "channel", store_col_text(st, 0),
                                              "ordinal", (json_int_t)store_col_int(st, 1)));
    store_done(st);
    size_t i;
    json_t *t = NULL;
    json_array_foreach(todo, i, t)
    {
        if (rc < 0) break;
        char id[ULID_LEN + 1];
        char *payload = jsonx_dump(t);
        ulid_new(id);
        rc = store_exec(cx->conn, e,
                        "INSERT INTO outbox (id, project_id, app_id, kind, target_id, payload, "
                        "due_at, expires_at, created_at) VALUES ($1, $2, $3, 'check', $3, $4, $5, "
                        "$6, $5)",
                        "ssssii", id, cx->project_id, app_id, payload, now,
                        now + 24LL * 3600 * 1000) < 0
                 ? -1
                 : 0;
        free(payload);
    }
    if (rc >= 0 && json_array_size(todo)) nudge_mark();
    json_decref(todo);
    return rc < 0 ? -1 : 0;
}

static int write_app(const convo_ctx_t *cx, const char *app_id, const app_state_t *st, int creating,
                     json_t *old_creds, err_t *e)
{
    int64_t now = clock_now_ms();
    char *settings = jsonx_dump(st->settings);
    int64_t n;
    if (creating)
        n = store_exec(cx->conn, e,
                       "INSERT INTO apps (id, project_id, display_name, processing_mode, "
                       "report_view, retention_type, "
                       "retention_ttl_days, dispatch_ttl_days, settings, created_at, updated_at) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                       "ssssssiisi", app_id, cx->project_id, st->display_name,
                       processing_modes[st->processing_mode], report_views[st->report_view],
                       retention_types[st->retention_type], st->retention_ttl, st->dispatch_ttl,
                       settings, now);
    else
        n = store_exec(
            cx->conn, e,
            "UPDATE apps SET display_name = $1, processing_mode = $2, report_view = $3, "
            "retention_type = $4, "
            "retention_ttl_days = $5, dispatch_ttl_days = $6, settings = $7, updated_at = $8 "
            "WHERE id = $9 AND project_id = $10",
            "ssssiisiss", st->display_name, processing_modes[st->processing_mode],
            report_views[st->report_view], retention_types[st->retention_type], st->retention_ttl,
            st->dispatch_ttl, settings, now, app_id, cx->project_id);
    free(settings);
    if (n < 0) return -1;
    if (n == 0) return err_set(e, ERR_NOT_FOUND, "app %s not found", app_id);
    if (!st->replace_creds) return 0;
    if (!creating &&
        store_exec(cx->conn, e, "DELETE FROM app_credentials WHERE app_id = $1", "s", app_id) < 0)
        return -1;
    if (insert_creds(cx, app_id, st, old_creds, now, e) < 0) return -1;
    return queue_checks(cx, app_id, now, e);
}

json_t *convo_app_create(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    app_state_t st;
    convo_mask_t none = {0};
    char id[ULID_LEN + 1];
    state_init(&st);
    if (apply_body(cx, &st, body, &none, 1, NULL, e) < 0) {
        state_free(&st);
        return NULL;
    }
    ulid_new(id);
    int rc = store_begin(cx->conn, e);
    if (rc == 0) {
        rc = write_app(cx, id, &st, 1, NULL, e);
        if (rc == 0) rc = store_commit(cx->conn, e);
        if (rc < 0) store_rollback(cx->conn);
    }
    state_free(&st);
    return rc < 0 ? NULL : convo_app_get(cx, id, e);
}

json_t *convo_app_update(const convo_ctx_t *cx, const char *app_id, json_t *body,
                         const convo_mask_t *mask, err_t *e)
{
    app_state_t st;
    json_t *old_creds = NULL;
    state_init(&st);
    /* Read, validate and write under the write lock, so concurrent updates serialise. */
    int rc = store_begin(cx->conn, e);
    if (rc < 0) {
        state_free(&st);
        return NULL;
    }
    rc = load_state(cx, app_id, &st, e);
    if (rc == 0 && convo_mask_wants(mask, body, "channel_credentials")) {
        old_creds = load_creds(cx, app_id, 1, e);
        if (!old_creds) rc = -1;
    }
    if (rc == 0) rc = apply_body(cx, &st, body, mask, 0, old_creds, e);
    if (rc == 0) rc = write_app(cx, app_id, &st, 0, old_creds, e);
    if (rc == 0) rc = store_commit(cx->conn, e);
    if (rc < 0) store_rollback(cx->conn);
    json_decref(old_creds);
    state_free(&st);
    return rc < 0 ? NULL : convo_app_get(cx, app_id, e);
}

int convo_app_delete(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    if (store_begin(cx->conn, e) < 0) return -1;
    /* Credentials, webhooks and conversations (with their messages) cascade; messages
     * kept outside a conversation (DISPATCH mode) and identities scoped to this app (they
     * mean nothing without it) are removed here. */
    int64_t n = store_exec(cx->conn, e, "DELETE FROM apps WHERE id = $1 AND project_id = $2", "ss",
                           app_id, cx->project_id);
    if (n == 0) n = err_set(e, ERR_NOT_FOUND, "app %s not found", app_id);
    if (n > 0 &&
        (store_exec(cx->conn, e, "DELETE FROM messages WHERE project_id = $1 AND app_id = $2", "ss",
                    cx->project_id, app_id) < 0 ||
         store_exec(cx->conn, e,
                    "DELETE FROM contact_identities WHERE project_id = $1 AND app_id = $2", "ss",
                    cx->project_id, app_id) < 0))
        n = -1;
    if (n > 0 && store_commit(cx->conn, e) < 0) n = -1;
    if (n < 0) {
        store_rollback(cx->conn);
        return -1;
    }
    return 0;
}

int convo_app_set_credential_state(const convo_ctx_t *cx, const char *app_id, const char *channel,
                                   int ordinal, const char *status, const char *description,
                                   err_t *e)
{
    int ok = 0;
    for (int i = 0; status && credential_states[i]; i++)
        ok |= strcmp(status, credential_states[i]) == 0;
    if (!ok)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "state.status must be one of PENDING, ACTIVE, FAILING, got \"%.40s\"",
                       status ? status : "");
    if (!channel || convo_channel_parse(channel, "channel", e) < 0) {
        if (!channel) err_set(e, ERR_INVALID_ARGUMENT, "channel is required");
        return -1;
    }
    if (!description) description = "";
    if (utf8_len(description) > APP_STATE_DESC_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "state.description is longer than %d characters",
                       APP_STATE_DESC_MAX);
    int64_t n = store_exec(
        cx->conn, e,
        "UPDATE app_credentials SET state_status = $1, state_description = $2, updated_at = $3 "
        "WHERE app_id = $4 AND channel = $5 AND ordinal = $6 "
        "AND EXISTS (SELECT 1 FROM apps WHERE id = $4 AND project_id = $7)",
        "ssissds", status, description, clock_now_ms(), app_id, channel, ordinal, cx->project_id);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND,
                       "app %s has no %s credential with credential_ordinal_number %d", app_id,
                       channel, ordinal);
    return 0;
}
