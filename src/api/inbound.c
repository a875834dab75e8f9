/* inbound.c: provider webhooks at /channels/{app_id}/{channel}, and messages:send and
 * messages:transcode. Inbound requests carry the provider's own authentication (a
 * signature or secret token checked by the channel adapter), never a Parley key. Answers
 * follow what providers expect: 200 once stored (they retry anything else), 401/403 for
 * a bad signature, 404 for an unknown app or channel, 400 for a payload that cannot be
 * parsed. */
#include "api/api.h"
#include "base/log.h"
#include "channels/channel.h"
#include "convo/apps.h"
#include "convo/inbound.h"
#include "convo/send.h"

#include <string.h>
#include <strings.h>

/* messages:send with a group-commit writer: the request is checked here (a bad one is
 * answered at once and never reaches the writer), the write joins the writer's next batch,
 * and the reply, deferred meanwhile, goes out once that batch is committed. */
typedef struct {
    store_unit_t unit;
    http_req_t *req;
    convo_ctx_t cx;
    convo_send_plan_t *plan;
    json_t *result;
} send_job_t;

static int send_run(store_conn_t *c, store_unit_t *u, err_t *e)
{
    send_job_t *j = u->arg;
    j->cx.conn = c;
    json_decref(j->result); /* a rerun (see store_unit_t.rerun) replaces the last reply */
    j->result = convo_send_commit(&j->cx, j->plan, e);
    return j->result ? 0 : -1;
}

static void send_done(store_unit_t *u, int rc, const err_t *e)
{
    send_job_t *j = u->arg;
    http_req_t *req = j->req;
    convo_send_plan_free(j->plan);
    if (rc == 0) {
        http_reply_json(req, 200, j->result);
    } else {
        json_decref(j->result);
        http_reply_err(req, e);
    }
    http_complete(req); /* j lives in req's arena: last touch */
}

static void send_message(http_req_t *req)
{
    convo_ctx_t cx;
    json_t *body;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(body = api_body(req))) return;
    api_ctx_t *ctx = http_ctx(req);
    convo_send_plan_t *plan = convo_send_prepare(&cx, body, &e);
    if (!plan) {
        http_reply_err(req, &e);
        return;
    }
    if (ctx->writer) {
        send_job_t *j = arena_alloc(http_arena(req), sizeof *j);
        memset(j, 0, sizeof *j);
        j->unit.run = send_run;
        j->unit.done = send_done;
        j->unit.arg = j;
        j->unit.rerun = 1;
        j->req = req;
        j->cx = cx;
        j->plan = plan;
        http_defer(req);
        if (store_group_submit(ctx->writer, &j->unit) == 0) return;
        send_done(&j->unit, -1, &(err_t){ERR_UNAVAILABLE, "shutting down, retry"});
        return;
    }
    json_t *result = convo_send_commit(&cx, plan, &e);
    convo_send_plan_free(plan);
    api_reply_result(req, 200, result, &e);
}

static void transcode(http_req_t *req)
{
    convo_ctx_t cx;
    json_t *body;
    err_t e;
    if (api_convo_ctx(req, &cx) < 0 || !(body = api_body(req))) return;
    api_reply_result(req, 200, convo_transcode(&cx, body, &e), &e);
}

/* URL names of the channels with webhooks (SMS arrives over SMPP). */
static const struct {
    const char *path;
    convo_channel_t ch;
} inbound_channels[] = {
    {"whatsapp", CONVO_WHATSAPP}, {"messenger", CONVO_MESSENGER}, {"instagram", CONVO_INSTAGRAM},
    {"viber", CONVO_VIBERBM},     {"viberbm", CONVO_VIBERBM},     {"telegram", CONVO_TELEGRAM},
    {"rcs", CONVO_RCS},
};

static const char *header_of(void *cls, const char *name)
{
    return http_header(cls, name);
}

static const char *query_of(void *cls, const char *name)
{
    return http_query(cls, name);
}

static void inbound(http_req_t *req)
{
    api_ctx_t *ctx = http_ctx(req);
    const char *chpath = http_param(req, "channel");
    int ch = -1;
    for (size_t i = 0; i < sizeof inbound_channels / sizeof inbound_channels[0]; i++)
        if (strcasecmp(chpath, inbound_channels[i].path) == 0) ch = (int)inbound_channels[i].ch;
    err_t e;
    char app_id[ULID_LEN + 1], project[ULID_LEN + 1];
    if (ch < 0) {
        http_reply_error(req, ERR_NOT_FOUND, "no inbound channel \"%.32s\" (SMS arrives over SMPP)",
                         chpath);
        return;
    }
    if (convo_norm_id(http_param(req, "app_id"), "app_id", app_id, &e) < 0) {
        http_reply_error(req, ERR_NOT_FOUND, "app not found");
        return;
    }
    store_conn_t *c = api_conn(req);
    if (!c) return;
    if (convo_inbound_project(c, app_id, project, &e) < 0) {
        http_reply_err(req, &e);
        return;
    }
    convo_ctx_t cx = {.conn = c, .project_id = project, .seal_key = ctx->seal_key};
    json_t *app = convo_app_get_internal(&cx, app_id, &e), *cred = NULL;
    size_t i;
    json_t *it = NULL;
    json_array_foreach(app ? json_object_get(app, "channel_credentials") : NULL, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "channel"));
        if (!cred && name && strcmp(name, convo_channel_names[ch]) == 0) cred = it;
    }
    const channel_t *a = channel_get((convo_channel_t)ch);
    if (!app || !cred || !a || !a->verify || !a->parse) {
        if (!app)
            http_reply_err(req, &e);
        else
            http_reply_error(req, ERR_NOT_FOUND, "app %s has no %s channel", app_id,
                             convo_channel_names[ch]);
        json_decref(app);
        return;
    }
    json_t *credential = json_object_get(cred, a->credential_key);
    const char *secret = json_string_value(json_object_get(cred, "callback_secret"));
    size_t len;
    const char *body = http_body(req, &len);
    channel_inbound_t in = {.method = http_method(req),
                            .body = body,
                            .body_len = len,
                            .header = header_of,
                            .query = query_of,
                            .cls = req};
    if (strcmp(http_method(req), "GET") == 0) {
        channel_reply_t reply = {0};
        if (!a->handshake) {
            http_reply_error(req, ERR_METHOD, "%s webhooks have no GET handshake", a->name);
        } else if (a->handshake(&in, credential, secret, &reply, &e) < 0) {
            http_reply_err(req, &e);
        } else {
            http_reply_raw(req, reply.status ? reply.status : 200, "text/plain", reply.body,
                           strlen(reply.body));
        }
        json_decref(app);
        return;
    }
    if (a->handshake && a->handshake_on_post) {
        channel_reply_t reply = {0};
        int h = a->handshake(&in, credential, secret, &reply, &e);
        if (h <= 0) {
            if (h == 0)
                http_reply_raw(req, reply.status ? reply.status : 200, "text/plain", reply.body,
                               strlen(reply.body));
            else
                http_reply_err(req, &e);
            json_decref(app);
            return;
        }
    }
    channel_events_t ev = {0};
    if (a->verify(&in, credential, secret, &e) < 0 || a->parse(&in, &ev, &e) < 0 ||
        convo_inbound_store(&cx, app_id, (convo_channel_t)ch, &ev, &e) < 0) {
        if (e.code != ERR_UNAUTHENTICATED && e.code != ERR_PERMISSION_DENIED)
            log_kv(LOG_WARN, "inbound webhook refused", "app_id", app_id, "channel", a->name,
                   "error", e.message);
        api_reply_result(req, 0, NULL, &e);
    } else {
        api_reply_result(req, 200, json_object(), &e);
    }
    channel_events_free(&ev);
    json_decref(app);
}

const http_route_t api_inbound_routes[] = {
    {"POST", "/v1/projects/{project_id}/messages:send", send_message, HTTP_AUTH | HTTP_JSON},
    {"POST", "/v1/projects/{project_id}/messages:transcode", transcode, HTTP_AUTH | HTTP_JSON},
    {"POST", "/channels/{app_id}/{channel}", inbound, HTTP_RAW},
    {"GET", "/channels/{app_id}/{channel}", inbound, HTTP_RAW},
};
const size_t api_inbound_nroutes = sizeof api_inbound_routes / sizeof api_inbound_routes[0];
