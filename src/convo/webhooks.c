/* webhooks.c: the Conversation API's webhooks (see webhooks.h). A webhook is handled as a
 * "plain" JSON object in the wire shape with its secrets in clear ({id, app_id, target,
 * target_type, secret?, triggers, client_credentials?}); it is sealed on the way into the
 * store, and masked on the way out to clients. Creates and app moves count the app's
 * webhooks and write inside one write transaction, so concurrent requests cannot exceed
 * the per-app limit. */
#include "convo/webhooks.h"
#include "base/clock.h"
#include "base/jsonx.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const convo_webhooks_triggers[] = {"UNSPECIFIED_TRIGGER",
                                               "MESSAGE_DELIVERY",
                                               "MESSAGE_SUBMIT",
                                               "MESSAGE_INBOUND",
                                               "EVENT_DELIVERY",
                                               "EVENT_INBOUND",
                                               "SMART_CONVERSATIONS",
                                               "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
                                               "CONVERSATION_START",
                                               "CONVERSATION_STOP",
                                               "CONVERSATION_DELETE",
                                               "CONTACT_CREATE",
                                               "CONTACT_DELETE",
                                               "CONTACT_MERGE",
                                               "CONTACT_UPDATE",
                                               "CONTACT_IDENTITIES_DUPLICATION",
                                               "UNSUPPORTED",
                                               "OPT_IN",
                                               "OPT_OUT",
                                               "CHANNEL_EVENT",
                                               "CAPABILITY",
                                               "RECORD_NOTIFICATION",
                                               NULL};

const char *const convo_webhooks_mask_paths[] = {
    "target", "target_type", "secret", "triggers", "client_credentials", "app_id", NULL};

static const char *const target_types[] = {"HTTP", "DISMISS", NULL};
static const char *const token_request_types[] = {"BASIC", "FORM", NULL};

#define CC_ID_MAX            1024
#define CC_SECRET_MAX        1024
#define CC_SCOPE_MAX         1024 /* as Sinch */
#define CC_RESPONSE_TYPE_MAX 64   /* as Sinch */

/* ---- validation ---- */

/* An absolute http:// or https:// URL with a host (name, IPv4 or [IPv6]) and an optional
 * port; no whitespace or control characters anywhere. */
static int url_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return 0;
    const char *rest = NULL;
    if (strncasecmp(s, "http://", 7) == 0)
        rest = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        rest = s + 8;
    else
        return 0;
    size_t alen = strcspn(rest, "/?#");
    const char *auth = rest, *end = rest + alen;
    for (const char *p = auth; p < end; p++)
        if (*p == '@') auth = p + 1; /* userinfo */
    const char *host = auth, *host_end;
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end || host_end == host + 1) return 0;
        for (const char *p = host + 1; p < host_end; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') return 0;
        host_end++;
    } else {
        host_end = host;
        while (host_end < end && *host_end != ':') {
            unsigned char c = (unsigned char)*host_end;
            if (!isalnum(c) && c != '-' && c != '.' && c != '_') return 0;
            host_end++;
        }
        if (host_end == host) return 0;
    }
    if (host_end == end) return 1;
    if (*host_end != ':' || host_end + 1 == end || end - host_end > 6) return 0;
    long port = 0;
    for (const char *p = host_end + 1; p < end; p++) {
        if (!isdigit((unsigned char)*p)) return 0;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

/* A required or optional URL field: 0 absent, 1 ok, -1 error. */
static int url_field(json_t *obj, const char *key, const char *name, err_t *e, const char **out)
{
    const char *s = NULL;
    int got = convo_str_field(obj, key, name, CONVO_WEBHOOK_TARGET_MAX, &s, e);
    if (got <= 0) return got;
    if (!url_ok(s))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field %s must be an absolute http:// or https:// URL with a host, got "
                       "\"%.80s\"",
                       name, s);
    *out = s;
    return 1;
}

/* A required, non-empty string with a length cap. */
static int required_str(json_t *obj, const char *key, const char *name, size_t max,
                        const char **out, err_t *e)
{
    int got = convo_str_field(obj, key, name, max, out, e);
    if (jsonx_require(got, name, e) < 0) return -1;
    if (!**out) return err_set(e, ERR_INVALID_ARGUMENT, "field %s must not be empty", name);
    return 1;
}

static int triggers_parse(json_t *arr, json_t **out, err_t *e)
{
    if (json_array_size(arr) == 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field triggers must list at least one trigger (e.g. MESSAGE_INBOUND)");
    int seen[32] = {0};
    size_t i;
    json_t *v = NULL;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return err_set(e, ERR_INVALID_ARGUMENT, "field triggers[%zu] must be a string", i);
        const char *s = json_string_value(v);
        int idx = -1;
        for (int k = 0; convo_webhooks_triggers[k]; k++)
            if (strcmp(s, convo_webhooks_triggers[k]) == 0) idx = k;
        if (idx < 0) {
            char list[420] = "";
            size_t off = 0;
            for (int k = 1; convo_webhooks_triggers[k] && off < sizeof list - 2; k++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", k > 1 ? " " : "",
                                        convo_webhooks_triggers[k]);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "field triggers[%zu]: unknown trigger \"%.32s\"; expected one of: %s", i,
                           s, list);
        }
        if (idx == 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "field triggers[%zu]: UNSPECIFIED_TRIGGER is not a trigger; name the "
                           "events to receive, e.g. MESSAGE_INBOUND",
                           i);
        if (seen[idx])
            return err_set(e, ERR_INVALID_ARGUMENT, "field triggers[%zu]: duplicate trigger %s", i,
                           s);
        seen[idx] = 1;
    }
    *out = json_deep_copy(arr);
    return 1;
}

/* client_credentials -> a normalised copy (token_request_type defaulted to BASIC). */
static int credentials_parse(json_t *cc, json_t **out, err_t *e)
{
    const char *id, *secret, *endpoint, *scope = NULL, *rtype = NULL;
    int ttype = 0;
    if (required_str(cc, "client_id", "client_credentials.client_id", CC_ID_MAX, &id, e) < 0 ||
        required_str(cc, "client_secret", "client_credentials.client_secret", CC_SECRET_MAX,
                     &secret, e) < 0 ||
        jsonx_require(url_field(cc, "endpoint", "client_credentials.endpoint", e, &endpoint),
                      "client_credentials.endpoint", e) < 0 ||
        convo_str_field(cc, "scope", "client_credentials.scope", CC_SCOPE_MAX, &scope, e) < 0 ||
        convo_str_field(cc, "response_type", "client_credentials.response_type",
                        CC_RESPONSE_TYPE_MAX, &rtype, e) < 0 ||
        jsonx_enum(cc, "token_request_type", "client_credentials.token_request_type",
                   token_request_types, &ttype, e) < 0)
        return -1;
    json_t *o = json_pack("{s:s, s:s, s:s}", "client_id", id, "client_secret", secret, "endpoint",
                          endpoint);
    if (scope && *scope) json_object_set_new(o, "scope", json_string(scope));
    if (rtype && *rtype) json_object_set_new(o, "response_type", json_string(rtype));
    json_object_set_new(o, "token_request_type", json_string(token_request_types[ttype]));
    *out = o;
    return 1;
}

/* Validate every known field present (and not null) in body, putting its normalised value
 * into in (a new object). Fields that are absent, null or (secret) empty are left out. */
static json_t *input_parse(json_t *body, err_t *e)
{
    json_t *in = json_object();
    const char *s = NULL;
    json_t *v = NULL;
    int got, idx;
    if ((got = jsonx_str(body, "app_id", "app_id", &s, e)) < 0) goto fail;
    if (got) {
        if (convo_check_id(s, "app_id", e) < 0) goto fail;
        json_object_set_new(in, "app_id", json_string(s));
    }
    if ((got = url_field(body, "target", "target", e, &s)) < 0) goto fail;
    if (got) json_object_set_new(in, "target", json_string(s));
    if ((got = jsonx_enum(body, "target_type", "target_type", target_types, &idx, e)) < 0)
        goto fail;
    if (got) json_object_set_new(in, "target_type", json_string(target_types[idx]));
    if ((got = convo_str_field(body, "secret", "secret", CONVO_WEBHOOK_SECRET_MAX, &s, e)) < 0)
        goto fail;
    if (got && *s) json_object_set_new(in, "secret", json_string(s));
    if ((got = jsonx_arr(body, "triggers", "triggers", &v, e)) < 0) goto fail;
    if (got) {
        json_t *t = NULL;
        if (triggers_parse(v, &t, e) < 0) goto fail;
        json_object_set_new(in, "triggers", t);
    }
    if ((got = jsonx_obj(body, "client_credentials", "client_credentials", &v, e)) < 0) goto fail;
    if (got) {
        json_t *cc = NULL;
        if (credentials_parse(v, &cc, e) < 0) goto fail;
        json_object_set_new(in, "client_credentials", cc);
    }
    return in;
fail:
    json_decref(in);
    return NULL;
}

/* ---- store ---- */

/* Inside a write transaction: may app_id take one more webhook? */
static int app_room(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    store_stmt_t *st =
        store_query(cx->conn, e, "SELECT COUNT(*) FROM webhooks WHERE app_id = $1", "s", app_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    int64_t n = rc == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    if (rc < 0) return -1;
    if (n >= CONVO_WEBHOOKS_MAX)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "app %s already has %d webhooks, the maximum; delete one first", app_id,
                       CONVO_WEBHOOKS_MAX);
    return 0;
}

#define ROW_COLS                                                                                   \
    "id, app_id, target, target_type, secret_sealed, triggers, client_credentials_sealed"

/* The current row of a ROW_COLS query as a plain webhook. */
static json_t *row_plain(const convo_ctx_t *cx, store_stmt_t *st, err_t *e)
{
    const char *id = store_col_text(st, 0);
    json_t *triggers = json_loads(store_col_text(st, 5), 0, NULL);
    if (!json_is_array(triggers)) {
        json_decref(triggers);
        err_set(e, ERR_INTERNAL, "webhook %s: stored triggers are corrupt", id);
        return NULL;
    }
    json_t *w = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "app_id", store_col_text(st, 1),
                          "target", store_col_text(st, 2), "target_type", store_col_text(st, 3),
                          "triggers", triggers);
    const char *sealed[2] = {store_col_text(st, 4), store_col_text(st, 6)};
    const char *key[2] = {"secret", "client_credentials"};
    for (int i = 0; i < 2; i++) {
        if (!sealed[i]) continue;
        json_t *v = convo_open_json(cx, sealed[i]);
        if (!v) {
            json_decref(w);
            err_set(e, ERR_INTERNAL,
                    "webhook %s: stored %s cannot be decrypted (was the data "
                    "directory's secret.key changed?)",
                    id, key[i]);
            return NULL;
        }
        json_object_set_new(w, key[i], v);
    }
    return w;
}

/* Load one webhook of the project as plain; NULL with NOT_FOUND if there is none. */
static json_t *load(const convo_ctx_t *cx, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " ROW_COLS " FROM webhooks WHERE id = $1 AND "
                                   "project_id = $2",
                                   "ss", id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *w = rc == 1 ? row_plain(cx, st, e) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "webhook %s not found", id);
    return w;
}

/* Insert (insert = 1) or update a plain webhook, sealing its secrets. */
static int save(const convo_ctx_t *cx, json_t *w, int insert, err_t *e)
{
    json_t *secret = json_object_get(w, "secret"), *cc = json_object_get(w, "client_credentials");
    char *secret_sealed = secret ? convo_seal_json(cx, secret) : NULL;
    char *cc_sealed = cc ? convo_seal_json(cx, cc) : NULL;
    char *triggers = jsonx_dump(json_object_get(w, "triggers"));
    int rc = -1;
    if ((secret && !secret_sealed) || (cc && !cc_sealed) || !triggers) {
        err_set(e, ERR_INTERNAL, "cannot seal the webhook's secrets");
        goto out;
    }
    const char *id = json_string_value(json_object_get(w, "id"));
    const char *app_id = json_string_value(json_object_get(w, "app_id"));
    const char *target = json_string_value(json_object_get(w, "target"));
    const char *ttype = json_string_value(json_object_get(w, "target_type"));
    int64_t now = clock_now_ms();
    int64_t n;
    if (insert)
        n = store_exec(cx->conn, e,
                       "INSERT INTO webhooks (id, project_id, app_id, target, target_type, "
                       "secret_sealed, triggers, client_credentials_sealed, created_at, "
                       "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                       "ssssssssi", id, cx->project_id, app_id, target, ttype, secret_sealed,
                       triggers, cc_sealed, now);
    else
        n = store_exec(cx->conn, e,
                       "UPDATE webhooks SET app_id = $3, target = $4, target_type = $5, "
                       "secret_sealed = $6, triggers = $7, client_credentials_sealed = $8, "
                       "updated_at = $9 WHERE id = $1 AND project_id = $2",
                       "ssssssssi", id, cx->project_id, app_id, target, ttype, secret_sealed,
                       triggers, cc_sealed, now);
    if (n == 1)
        rc = 0;
    else if (n == 0)
        err_set(e, ERR_NOT_FOUND, "webhook %s not found", id);
out:
    free(secret_sealed);
    free(cc_sealed);
    free(triggers);
    return rc;
}

/* What a client sees: the plain webhook with its secrets masked, keys in a fixed order
 * (new reference). */
static json_t *view(json_t *plain)
{
    static const char *const keys[] = {
        "id", "app_id", "target", "target_type", "secret", "triggers", "client_credentials", NULL};
    json_t *w = json_object();
    for (int i = 0; keys[i]; i++) {
        json_t *v = json_object_get(plain, keys[i]);
        if (v) json_object_set_new(w, keys[i], json_deep_copy(v));
    }
    json_t *secret = json_object_get(w, "secret");
    json_t *cc = json_object_get(w, "client_credentials");
    if (secret) {
        char *m = convo_mask_secret(json_string_value(secret));
        json_object_set_new(w, "secret", json_string(m));
        free(m);
    }
    if (cc) {
        char *m = convo_mask_secret(json_string_value(json_object_get(cc, "client_secret")));
        json_object_set_new(cc, "client_secret", json_string(m));
        free(m);
    }
    return w;
}

/* ---- operations ---- */

json_t *convo_webhooks_create(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    json_t *w = input_parse(body, e);
    if (!w) return NULL;
    if (jsonx_require(json_object_get(w, "app_id") != NULL, "app_id", e) < 0 ||
        jsonx_require(json_object_get(w, "target") != NULL, "target", e) < 0 ||
        jsonx_require(json_object_get(w, "triggers") != NULL, "triggers", e) < 0) {
        json_decref(w);
        return NULL;
    }
    if (!json_object_get(w, "target_type"))
        json_object_set_new(w, "target_type", json_string("HTTP"));
    char id[ULID_LEN + 1];
    ulid_new(id);
    json_object_set_new(w, "id", json_string(id));
    const char *app_id = json_string_value(json_object_get(w, "app_id"));
    if (store_begin(cx->conn, e) < 0) goto fail;
    if (convo_require(cx, CONVO_KIND_APP, app_id, e) < 0 || app_room(cx, app_id, e) < 0 ||
        save(cx, w, 1, e) < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        goto fail;
    }
    json_t *out = view(w);
    json_decref(w);
    return out;
fail:
    json_decref(w);
    return NULL;
}

json_t *convo_webhooks_get(const convo_ctx_t *cx, const char *webhook_id, err_t *e)
{
    json_t *w = load(cx, webhook_id, e);
    if (!w) return NULL;
    json_t *out = view(w);
    json_decref(w);
    return out;
}

/* Apply one masked path from the validated input `in` onto the plain webhook `w`. A path
 * the input lacks is reset to its default; required fields have none. */
static int apply(json_t *w, json_t *in, const char *path, err_t *e)
{
    json_t *v = json_object_get(in, path);
    if (v) {
        json_object_set(w, path, v);
        return 0;
    }
    if (strcmp(path, "target_type") == 0) {
        json_object_set_new(w, path, json_string("HTTP"));
        return 0;
    }
    if (strcmp(path, "secret") == 0 || strcmp(path, "client_credentials") == 0) {
        json_object_del(w, path);
        return 0;
    }
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "missing required field %s (it is in the update, and cannot be cleared)", path);
}

json_t *convo_webhooks_update(const convo_ctx_t *cx, const char *webhook_id, json_t *body,
                              const convo_mask_t *mask, err_t *e)
{
    json_t *in = input_parse(body, e);
    if (!in) return NULL;
    json_t *w = NULL, *out = NULL;
    if (store_begin(cx->conn, e) < 0) goto done;
    w = load(cx, webhook_id, e);
    if (!w) goto rollback;
    char old_app[ULID_LEN + 1];
    snprintf(old_app, sizeof old_app, "%s", json_string_value(json_object_get(w, "app_id")));
    for (int i = 0; convo_webhooks_mask_paths[i]; i++) {
        const char *path = convo_webhooks_mask_paths[i];
        if (convo_mask_wants(mask, body, path) && apply(w, in, path, e) < 0) goto rollback;
    }
    const char *new_app = json_string_value(json_object_get(w, "app_id"));
    if (strcmp(new_app, old_app) != 0 &&
        (convo_require(cx, CONVO_KIND_APP, new_app, e) < 0 || app_room(cx, new_app, e) < 0))
        goto rollback;
    if (save(cx, w, 0, e) < 0 || store_commit(cx->conn, e) < 0) goto rollback;
    out = view(w);
    goto done;
rollback:
    store_rollback(cx->conn);
done:
    json_decref(w);
    json_decref(in);
    return out;
}

json_t *convo_webhooks_delete(const convo_ctx_t *cx, const char *webhook_id, err_t *e)
{
    int64_t n = store_exec(cx->conn, e, "DELETE FROM webhooks WHERE id = $1 AND project_id = $2",
                           "ss", webhook_id, cx->project_id);
    if (n < 0) return NULL;
    if (n == 0) {
        err_set(e, ERR_NOT_FOUND, "webhook %s not found", webhook_id);
        return NULL;
    }
    return json_object();
}

/* The app's webhooks as plain objects, in id order. */
static json_t *app_webhooks(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " ROW_COLS " FROM webhooks WHERE app_id = $1 AND "
                                   "project_id = $2 ORDER BY id",
                                   "ss", app_id, cx->project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        json_t *w = row_plain(cx, st, e);
        if (!w) {
            rc = -1;
            break;
        }
        json_array_append_new(arr, w);
    }
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *convo_webhooks_list(const convo_ctx_t *cx, const char *app_id, err_t *e)
{
    if (convo_require(cx, CONVO_KIND_APP, app_id, e) < 0) return NULL;
    json_t *arr = app_webhooks(cx, app_id, e);
    if (!arr) return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *w = NULL;
    json_array_foreach(arr, i, w) json_array_append_new(out, view(w));
    json_decref(arr);
    return json_pack("{s:o}", "webhooks", out);
}
