/* send.c: messages:send and messages:transcode (see send.h). */
#include "convo/send.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/nudge.h"
#include "base/tcache.h"
#include "channels/channel.h"
#include "channels/render.h"
#include "convo/contacts.h"
#include "convo/conversations.h"
#include "convo/messages.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SMS: at most this many concatenated parts (about 1500 GSM characters). */
#define SMS_MAX_TEXT 1530

json_t *convo_transcode_one(convo_channel_t ch, json_t *app_message, err_t *e)
{
    if (ch == CONVO_SMS) {
        char *text = channel_render_text(app_message, e);
        if (!text) return NULL;
        if (strlen(text) > SMS_MAX_TEXT) {
            free(text);
            err_set(e, ERR_INVALID_ARGUMENT,
                    "message is too long for SMS (more than %d characters)", SMS_MAX_TEXT);
            return NULL;
        }
        json_t *out = json_pack("{s:s}", "text", text);
        free(text);
        return out;
    }
    const channel_t *a = channel_get(ch);
    if (!a || !a->transcode) {
        err_set(e, ERR_UNIMPLEMENTED, "channel %s cannot transcode messages yet",
                convo_channel_names[ch]);
        return NULL;
    }
    return a->transcode(app_message, e);
}

json_t *convo_transcode(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    const char *app_id = NULL;
    json_t *msg = NULL, *channels = NULL;
    if (jsonx_require(jsonx_str(body, "app_id", "app_id", &app_id, e), "app_id", e) < 0 ||
        convo_check_id(app_id, "app_id", e) < 0 ||
        jsonx_require(jsonx_obj(body, "app_message", "app_message", &msg, e), "app_message", e) <
            0 ||
        convo_message_check_app(msg, "app_message", e) < 0 ||
        jsonx_require(jsonx_arr(body, "channels", "channels", &channels, e), "channels", e) < 0)
        return NULL;
    if (json_array_size(channels) == 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "channels must name at least one channel"), NULL;
    if (convo_require(cx, CONVO_KIND_APP, app_id, e) < 0) return NULL;
    json_t *out = json_object();
    size_t i;
    json_t *c = NULL;
    json_array_foreach(channels, i, c)
    {
        char field[32];
        snprintf(field, sizeof field, "channels[%zu]", i);
        int ch = json_is_string(c) ? convo_channel_parse(json_string_value(c), field, e)
                                   : err_set(e, ERR_INVALID_ARGUMENT, "%s must be a string", field);
        json_t *t = ch < 0 ? NULL : convo_transcode_one((convo_channel_t)ch, msg, e);
        if (!t) {
            json_decref(out);
            return NULL;
        }
        char *text = jsonx_dump(t);
        json_object_set_new(out, convo_channel_names[ch], json_string(text ? text : ""));
        free(text);
        json_decref(t);
    }
    return json_pack("{s:o}", "transcoded_message", out);
}

/* ---- recipient and channel choice ---- */

/* A validated send, ready to store (see send.h). Borrows from the request body. */
struct convo_send_plan {
    const char *app_id, *metadata, *corr;
    json_t *msg, *explicit_order, *props, *conv_md, *ids_in; /* borrowed from body */
    json_t *app;                                             /* owned: app_channels */
    char *content_text; /* owned: msg serialised here, on the HTTP thread, not the writer's */
    char contact_id[ULID_LEN + 1]; /* recipient.contact_id, if given */
    int queue, dispatch_only;
    int64_t ttl;
    /* Per app channel: ERR_OK if msg can be carried, else why not. Found in prepare, so
     * the store writer does not transcode. */
    err_t carry[CONVO_CHANNEL_COUNT];
};

typedef struct {
    int ch;
    char identity[257];
    char app_id[ULID_LEN + 1]; /* app-scoped identities only */
} target_t;

typedef struct {
    target_t t[CONVO_CHANNEL_COUNT];
    int n;
} targets_t;

/* The recipient's identity on channel ch usable by app_id, from an array of
 * ChannelIdentity objects: 1 found (copied into t), 0 none. */
static int identity_on(json_t *ids, int ch, const char *app_id, target_t *t)
{
    size_t i;
    json_t *it = NULL;
    json_array_foreach(ids, i, it)
    {
        const char *c = json_string_value(json_object_get(it, "channel"));
        const char *id = json_string_value(json_object_get(it, "identity"));
        const char *app = json_string_value(json_object_get(it, "app_id"));
        if (!c || !id || strcmp(c, convo_channel_names[ch]) != 0) continue;
        if (convo_channel_app_scoped((convo_channel_t)ch) && app && *app &&
            strcmp(app, app_id) != 0)
            continue;
        t->ch = ch;
        snprintf(t->identity, sizeof t->identity, "%s", id);
        snprintf(t->app_id, sizeof t->app_id, "%s",
                 convo_channel_app_scoped((convo_channel_t)ch) ? app_id : "");
        return 1;
    }
    return 0;
}

static int list_has(const int *list, int n, int ch)
{
    for (int i = 0; i < n; i++)
        if (list[i] == ch) return 1;
    return 0;
}

/* Channels from a JSON array of names into list (deduplicated); -1 on a bad name. */
static int channel_list(json_t *arr, const char *field, int *list, int *n, err_t *e)
{
    size_t i;
    json_t *c = NULL;
    json_array_foreach(arr, i, c)
    {
        char f[64];
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        if (!json_is_string(c)) return err_set(e, ERR_INVALID_ARGUMENT, "%s must be a string", f);
        int ch = convo_channel_parse(json_string_value(c), f, e);
        if (ch < 0) return -1;
        if (!list_has(list, *n, ch)) list[(*n)++] = ch;
    }
    return 0;
}

/* Order: channel_priority_order (only those), else the contact's channel_priority then the
 * app's other channels, else the app's credential order; kept where the app has a
 * credential and the recipient an identity, and where the message can be carried. */
static int choose(const convo_send_plan_t *p, json_t *ids, json_t *contact_priority, targets_t *out,
                  err_t *e)
{
    json_t *app = p->app, *explicit_order = p->explicit_order;
    int app_ch[CONVO_CHANNEL_COUNT], napp = 0, order[CONVO_CHANNEL_COUNT * 2], norder = 0;
    size_t i;
    json_t *cred = NULL;
    json_array_foreach(json_object_get(app, "channel_credentials"), i, cred)
    {
        int ch = convo_channel_parse(json_string_value(json_object_get(cred, "channel")), "", NULL);
        if (ch >= 0 && !list_has(app_ch, napp, ch)) app_ch[napp++] = ch;
    }
    if (explicit_order) {
        if (channel_list(explicit_order, "channel_priority_order", order, &norder, e) < 0)
            return -1;
    } else {
        if (contact_priority &&
            channel_list(contact_priority, "channel_priority", order, &norder, e) < 0)
            return -1;
        for (int k = 0; k < napp; k++)
            if (!list_has(order, norder, app_ch[k])) order[norder++] = app_ch[k];
    }
    const char *app_id = json_string_value(json_object_get(app, "id"));
    err_t first;
    first.code = ERR_OK;
    out->n = 0;
    for (int k = 0; k < norder; k++) {
        target_t t;
        if (!list_has(app_ch, napp, order[k]) || !identity_on(ids, order[k], app_id, &t)) continue;
        if (p->carry[order[k]].code != ERR_OK) { /* transcoded in convo_send_prepare */
            if (first.code == ERR_OK) first = p->carry[order[k]];
            continue;
        }
        out->t[out->n++] = t;
    }
    if (out->n > 0) return 0;
    if (first.code != ERR_OK) {
        *e = first;
        return -1;
    }
    char have[200] = "", want[200] = "";
    size_t off = 0;
    for (int k = 0; k < napp; k++)
        off += (size_t)snprintf(have + off, sizeof have - off, "%s%s", k ? ", " : "",
                                convo_channel_names[app_ch[k]]);
    off = 0;
    json_array_foreach(ids, i, cred)
    {
        const char *c = json_string_value(json_object_get(cred, "channel"));
        if (c && off < sizeof want - 20)
            off += (size_t)snprintf(want + off, sizeof want - off, "%s%s", i ? ", " : "", c);
    }
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "recipient has no identity on any channel this message can use (app channels: "
                   "%s; recipient identities: %s)",
                   *have ? have : "none", *want ? want : "none");
}

/* What sending needs of the app: {id, processing_mode, channel_credentials: [{channel}]}
 * in priority order, read without opening any sealed secret (the dispatcher does that).
 * Cached as "mode\nCHANNEL\nCHANNEL..." under the configuration generation (an app or
 * credential change advances it), so a send costs one small read here, not a join. */
static tcache_t *app_cache;
static pthread_once_t app_cache_once = PTHREAD_ONCE_INIT;
static void app_cache_init(void)
{
    app_cache = tcache_new(1024);
}

static json_t *app_from_text(const char *app_id, const char *text)
{
    const char *nl = strchr(text, '\n');
    char mode[32];
    snprintf(mode, sizeof mode, "%.*s", nl ? (int)(nl - text) : (int)strlen(text), text);
    json_t *creds = json_array();
    for (const char *p = nl; p && *p;) {
        const char *q = strchr(++p, '\n');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n) json_array_append_new(creds, json_pack("{s:s%}", "channel", p, n));
        p = q;
    }
    return json_pack("{s:s, s:s, s:o}", "id", app_id, "processing_mode", mode,
                     "channel_credentials", creds);
}

static json_t *app_channels(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    pthread_once(&app_cache_once, app_cache_init);
    char key[2 * ULID_LEN + 2], text[512];
    snprintf(key, sizeof key, "%s/%s", cx->project_id, app_id);
    uint64_t token;
    if (store_config_gen(cx->conn, &token, e) < 0) return NULL;
    int n = tcache_get(app_cache, key, token, text, sizeof text - 1);
    if (n >= 0) {
        text[n] = 0;
        return app_from_text(app_id, text);
    }
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT a.processing_mode, k.channel FROM apps a LEFT JOIN "
                                   "app_credentials k ON k.app_id = a.id WHERE a.id = $1 AND "
                                   "a.project_id = $2 ORDER BY k.position",
                                   "ss", app_id, cx->project_id);
    if (!st) return NULL;
    buf_t b;
    buf_init(&b);
    int rc, found = 0;
    while ((rc = store_step(st, e)) == 1) {
        if (!found++) buf_printf(&b, "%s", store_col_text(st, 0));
        if (!store_col_is_null(st, 1)) buf_printf(&b, "\n%s", store_col_text(st, 1));
    }
    store_done(st);
    json_t *app = NULL;
    if (rc == 0 && !found) err_set(e, ERR_NOT_FOUND, "app %s not found", app_id);
    if (rc == 0 && found) {
        if (b.len < sizeof text) tcache_put(app_cache, key, token, b.data, b.len);
        app = app_from_text(app_id, b.data);
    }
    buf_free(&b);
    return app;
}

/* "10s", "10", 10 -> seconds; 0 absent, -1 malformed. */
static int parse_ttl(json_t *body, int64_t *secs, err_t *e)
{
    json_t *v = json_object_get(body, "ttl");
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *secs = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (end == json_string_value(v) || (*end && strcmp(end, "s") != 0))
            return err_set(e, ERR_INVALID_ARGUMENT, "field ttl must be seconds like \"3600s\"");
        *secs = n;
    } else {
        return err_set(e, ERR_INVALID_ARGUMENT, "field ttl must be a string like \"3600s\"");
    }
    if (*secs < 1 || *secs > 14 * 86400)
        return err_set(e, ERR_INVALID_ARGUMENT, "field ttl must be from 1s to 1209600s (14 days)");
    return 1;
}

static const char *const queues[] = {"NORMAL_PRIORITY", "HIGH_PRIORITY", NULL};
static const char *const strategies[] = {"DEFAULT", "DISPATCH_ONLY", NULL};

void convo_send_plan_free(convo_send_plan_t *p)
{
    if (!p) return;
    json_decref(p->app);
    free(p->content_text);
    free(p);
}

convo_send_plan_t *convo_send_prepare(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    const char *app_id = NULL, *metadata = "", *corr = "", *contact_in = NULL;
    json_t *recipient = NULL, *msg = NULL, *explicit_order = NULL, *props = NULL, *conv_md = NULL,
           *identified = NULL, *ids_in = NULL;
    int queue = 0, strategy = 0;
    int64_t ttl = CONVO_SEND_TTL_DEFAULT_S;
    if (jsonx_require(jsonx_str(body, "app_id", "app_id", &app_id, e), "app_id", e) < 0 ||
        convo_check_id(app_id, "app_id", e) < 0 ||
        jsonx_require(jsonx_obj(body, "recipient", "recipient", &recipient, e), "recipient", e) <
            0 ||
        jsonx_require(jsonx_obj(body, "message", "message", &msg, e), "message", e) < 0 ||
        convo_message_check_app(msg, "message", e) < 0 ||
        jsonx_arr(body, "channel_priority_order", "channel_priority_order", &explicit_order, e) <
            0 ||
        jsonx_obj(body, "channel_properties", "channel_properties", &props, e) < 0 ||
        convo_str_field(body, "message_metadata", "message_metadata", 1024, &metadata, e) < 0 ||
        jsonx_obj(body, "conversation_metadata", "conversation_metadata", &conv_md, e) < 0 ||
        convo_str_field(body, "correlation_id", "correlation_id", 128, &corr, e) < 0 ||
        jsonx_enum(body, "queue", "queue", queues, &queue, e) < 0 ||
        jsonx_enum(body, "processing_strategy", "processing_strategy", strategies, &strategy, e) <
            0 ||
        parse_ttl(body, &ttl, e) < 0)
        return NULL;
    if (explicit_order && json_array_size(explicit_order) == 0) explicit_order = NULL;
    const char *pk = NULL;
    json_t *pv = NULL;
    json_object_foreach(props, pk, pv)
    {
        if (!json_is_string(pv)) {
            err_set(e, ERR_INVALID_ARGUMENT, "channel_properties.%s must be a string", pk);
            return NULL;
        }
    }
    if (jsonx_str(recipient, "contact_id", "recipient.contact_id", &contact_in, e) < 0 ||
        jsonx_obj(recipient, "identified_by", "recipient.identified_by", &identified, e) < 0 ||
        (identified &&
         jsonx_require(jsonx_arr(identified, "channel_identities",
                                 "recipient.identified_by.channel_identities", &ids_in, e),
                       "recipient.identified_by.channel_identities", e) < 0))
        return NULL;
    if (!!contact_in == !!identified)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "recipient needs exactly one of contact_id and identified_by"),
               NULL;
    if (ids_in && json_array_size(ids_in) == 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "recipient.identified_by.channel_identities must not be empty"),
               NULL;
    size_t i;
    json_t *it = NULL;
    json_array_foreach(ids_in, i, it)
    {
        char f[96];
        const char *ch_name = NULL, *ident = NULL;
        snprintf(f, sizeof f, "recipient.identified_by.channel_identities[%zu]", i);
        if (!json_is_object(it))
            return err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object", f), NULL;
        if (jsonx_require(jsonx_str(it, "channel", f, &ch_name, e), f, e) < 0 ||
            jsonx_require(jsonx_str(it, "identity", f, &ident, e), f, e) < 0 ||
            convo_channel_parse(ch_name, f, e) < 0)
            return NULL;
    }
    convo_send_plan_t *p = xcalloc(1, sizeof *p);
    if (contact_in && convo_norm_id(contact_in, "recipient.contact_id", p->contact_id, e) < 0) {
        free(p);
        return NULL;
    }
    p->app = app_channels(cx, app_id, e);
    if (!p->app) {
        free(p);
        return NULL;
    }
    p->app_id = app_id;
    p->content_text = jsonx_dump(msg);
    p->metadata = metadata;
    p->corr = corr;
    p->msg = msg;
    p->explicit_order = explicit_order;
    p->props = props;
    p->conv_md = conv_md;
    p->ids_in = ids_in;
    p->queue = queue;
    p->ttl = ttl;
    p->dispatch_only =
        strategy == 1 ||
        strcmp(json_string_value(json_object_get(p->app, "processing_mode")), "DISPATCH") == 0;
    json_t *cred = NULL;
    json_array_foreach(json_object_get(p->app, "channel_credentials"), i, cred)
    {
        int ch = convo_channel_parse(json_string_value(json_object_get(cred, "channel")), "", NULL);
        if (ch < 0) continue;
        json_t *tr = convo_transcode_one((convo_channel_t)ch, msg, &p->carry[ch]);
        if (tr || p->carry[ch].code == ERR_UNIMPLEMENTED) p->carry[ch].code = ERR_OK;
        json_decref(tr);
    }
    return p;
}

json_t *convo_send_commit(const convo_ctx_t *cx, const convo_send_plan_t *p, err_t *e)
{
    const char *app_id = p->app_id;
    json_t *contact = NULL, *ids = NULL, *result = NULL, *prio = NULL;
    char contact_id[ULID_LEN + 1];
    memcpy(contact_id, p->contact_id, sizeof contact_id);
    if (store_begin(cx->conn, e) < 0) return NULL;
    if (*contact_id) {
        contact = convo_contact_get(cx, contact_id, e);
        if (!contact) goto rollback;
        ids = json_incref(json_object_get(contact, "channel_identities"));
    } else {
        /* The given identities are the targets; the first names (or creates) the contact. */
        ids = json_incref(p->ids_in);
        json_t *first = json_array_get(ids, 0);
        const char *ch_name = json_string_value(json_object_get(first, "channel"));
        int ch = convo_channel_parse(ch_name, "channel", NULL);
        if (!p->dispatch_only &&
            convo_contact_resolve(cx, (convo_channel_t)ch, app_id,
                                  json_string_value(json_object_get(first, "identity")), NULL, 1,
                                  contact_id, NULL, e) < 0)
            goto rollback;
        if (*contact_id && !p->explicit_order) { /* only its channel_priority is needed */
            int rc = convo_contact_priority(cx, contact_id, &prio, e);
            if (rc == 0) err_set(e, ERR_NOT_FOUND, "contact %s not found", contact_id);
            if (rc != 1) goto rollback;
        }
    }
    targets_t tg;
    if (choose(p, ids,
               p->explicit_order ? NULL
               : contact         ? json_object_get(contact, "channel_priority")
                                 : prio,
               &tg, e) < 0)
        goto rollback;

    int64_t now = clock_now_ms();
    char conv_id[ULID_LEN + 1] = "", msg_id[ULID_LEN + 1];
    if (!p->dispatch_only && *contact_id) {
        int started = 0;
        if (convo_conversation_find_or_start(
                cx, app_id, contact_id, convo_channel_names[tg.t[0].ch], conv_id, &started, e) < 0)
            goto rollback;
        if (p->conv_md) {
            char *md = jsonx_dump(p->conv_md);
            int64_t n =
                store_exec(cx->conn, e, "UPDATE conversations SET metadata_json = $1 WHERE id = $2",
                           "ss", md, conv_id);
            free(md);
            if (n < 0) goto rollback;
        }
    }
    convo_message_row_t row = {.app_id = app_id,
                               .conversation_id = *conv_id ? conv_id : NULL,
                               .contact_id = *contact_id ? contact_id : NULL,
                               .direction = "TO_CONTACT",
                               .channel = convo_channel_names[tg.t[0].ch],
                               .identity = tg.t[0].identity,
                               .identity_app_id = tg.t[0].app_id,
                               .accept_time = now,
                               .kind = "app_message",
                               .content = p->msg,
                               .content_text = p->content_text,
                               .metadata = p->metadata,
                               .processing_mode = p->dispatch_only ? "DISPATCH" : "CONVERSATION",
                               .status = "QUEUED",
                               .status_time = now,
                               .correlation_id = p->corr};
    if (convo_message_insert(cx, &row, msg_id, e) < 0) goto rollback;
    json_t *chans = json_array();
    for (int k = 0; k < tg.n; k++)
        json_array_append_new(chans, json_pack("{s:s, s:s, s:s}", "channel",
                                               convo_channel_names[tg.t[k].ch], "identity",
                                               tg.t[k].identity, "app_id", tg.t[k].app_id));
    json_t *job = json_pack("{s:o, s:i, s:o}", "channels", chans, "index", 0, "channel_properties",
                            p->props ? json_incref(p->props) : json_object());
    char *payload = jsonx_dump(job);
    json_decref(job);
    char job_id[ULID_LEN + 1];
    ulid_new(job_id);
    /* HIGH_PRIORITY jumps the queue: the dispatcher claims by due time. */
    int64_t due = p->queue == 1 ? now - 60000 : now;
    int64_t n = store_exec(
        cx->conn, e,
        "INSERT INTO outbox (id, project_id, app_id, kind, target_id, payload, due_at, "
        "expires_at, created_at) VALUES ($1, $2, $3, 'deliver', $4, $5, $6, $7, $8)",
        "sssssiii", job_id, cx->project_id, app_id, msg_id, payload, due, now + p->ttl * 1000, now);
    free(payload);
    if (n < 0) goto rollback;
    if (store_commit(cx->conn, e) < 0) goto out; /* it rolled back itself */
    nudge_mark();
    result = json_pack("{s:s, s:o}", "message_id", msg_id, "accepted_time", convo_time_json(now));
    goto out;
rollback:
    store_rollback(cx->conn);
out:
    json_decref(contact);
    json_decref(prio);
    json_decref(ids);
    return result;
}

json_t *convo_send(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    convo_send_plan_t *p = convo_send_prepare(cx, body, e);
    if (!p) return NULL;
    json_t *result = convo_send_commit(cx, p, e);
    convo_send_plan_free(p);
    return result;
}
