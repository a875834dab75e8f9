/* contact_workspace.c: the agent workspace's HTTP resources under /v1/projects/{p}/contact/:
 * the queue (view, pick), conversations (mine, one, transcript, reply, notes, transfer,
 * close), the dashboard, and GET /events, the per-user Server-Sent Events stream read from
 * the durable contact_events log (resumable with Last-Event-ID). */
#include "api/contact_routing.h"
#include "api/api.h"
#include "base/buf.h"
#include "base/clock.h"
#include "contact/contact.h"

#include <stdlib.h>
#include <string.h>

static void queue_list(http_req_t *req)
{
    CTX(R_WORK);
    api_contact_reply(req, contact_queue_list(&cx, &e), &e);
}

static void queue_pick(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    api_contact_reply(req, contact_queue_pick(&cx, id, &e), &e);
}

static void dashboard(http_req_t *req)
{
    CTX(R_WORK);
    api_contact_reply(req, contact_dashboard(&cx, &e), &e);
}

static void conv_list(http_req_t *req)
{
    CTX(R_WORK);
    const char *mine = http_query(req, "mine");
    api_contact_reply(
        req,
        contact_conv_list(&cx, mine && strcmp(mine, "true") == 0, http_query(req, "status"), &e),
        &e);
}

static void my_convs(http_req_t *req)
{
    CTX(R_WORK);
    api_contact_reply(req, contact_conv_list(&cx, 1, http_query(req, "status"), &e), &e);
}

static void conv_get(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    api_contact_reply(req, contact_conv_get(&cx, id, &e), &e);
}

static void conv_transcript(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    api_contact_reply(req, contact_conv_transcript(&cx, id, &e), &e);
}

static void conv_reply(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    json_t *b = api_body(req);
    if (!b) return;
    api_contact_reply(req, contact_conv_reply(&cx, id, b, &e), &e);
}

static void conv_note(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    json_t *b = api_body(req);
    if (!b) return;
    api_contact_reply(req, contact_conv_note(&cx, id, b, &e), &e);
}

static void conv_transfer(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    json_t *b = api_body(req);
    if (!b) return;
    api_contact_reply(req, contact_conv_transfer(&cx, id, b, &e), &e);
}

static void conv_close(http_req_t *req)
{
    CTX(R_WORK);
    ID(id, "conv_id");
    json_t *b = http_json(req);
    if (b && !json_is_object(b)) {
        http_reply_error(req, ERR_INVALID_ARGUMENT, "request body must be a JSON object");
        return;
    }
    api_contact_reply(req, contact_conv_close(&cx, id, b, &e), &e);
}

/* ---- the event stream ---- */

typedef struct {
    store_t *store;
    char project[27], user[27];
    int64_t cursor;  /* last id sent */
    int64_t checked; /* newest id for this user published at the last query */
    int64_t queried_ms;
    int greeted;
} sse_src_t;

static int sse_poll(void *ud, buf_t *out)
{
    sse_src_t *s = ud;
    if (!s->greeted) {
        s->greeted = 1;
        buf_puts(out, ": contact events\n\n");
    }
    int64_t head = contact_events_latest(s->project, s->user), now = clock_mono_ms();
    /* Nothing published for this user since the last look: skip the query (but look at
     * least every few seconds, in case an id was published before its row was readable). */
    if (head <= s->checked && now - s->queried_ms < 3000) return 0;
    err_t e;
    store_conn_t *c = store_conn(s->store, &e);
    if (!c) return 0;
    for (int round = 0; round < 5; round++) {
        json_t *evs = contact_events_since(c, s->project, s->user, s->cursor, 200, &e);
        if (!evs) return 0;
        size_t i;
        json_t *v;
        json_array_foreach(evs, i, v)
        {
            int64_t id = json_integer_value(json_object_get(v, "id"));
            char ids[24];
            snprintf(ids, sizeof ids, "%lld", (long long)id);
            json_t *data = json_object_get(v, "data");
            json_object_set(data, "event_time", json_object_get(v, "created_at"));
            char *text = json_dumps(data, JSON_COMPACT);
            http_sse_format(out, ids, json_string_value(json_object_get(v, "kind")), text);
            free(text);
            s->cursor = id;
        }
        size_t n = json_array_size(evs);
        json_decref(evs);
        if (n < 200) break;
    }
    s->checked = head;
    s->queried_ms = now;
    return 0;
}

static void events(http_req_t *req)
{
    CTX(CONTACT_ROLE_ADMIN | CONTACT_ROLE_SUPERVISOR | CONTACT_ROLE_AGENT | CONTACT_ROLE_DPO);
    (void)e;
    api_ctx_t *ctx = http_ctx(req);
    contact_events_on_publish(http_sse_notify);
    sse_src_t *s = calloc(1, sizeof *s);
    if (!s) {
        http_reply_error(req, ERR_UNAVAILABLE, "out of memory");
        return;
    }
    s->store = ctx->store;
    snprintf(s->project, sizeof s->project, "%s", cx.project_id);
    snprintf(s->user, sizeof s->user, "%s", cx.user_id);
    const char *last = http_header(req, "Last-Event-ID");
    if (!last) last = http_query(req, "last_event_id");
    if (last) {
        char *end;
        long long v = strtoll(last, &end, 10);
        if (!*last || *end || v < 0) {
            free(s);
            http_reply_error(req, ERR_INVALID_ARGUMENT,
                             "Last-Event-ID must be an event id (a non-negative integer)");
            return;
        }
        s->cursor = v;
    } else {
        s->cursor = contact_events_head();
    }
    s->checked = -1;
    http_sse_source_t src = {sse_poll, free, s};
    http_add_header(req, "Cache-Control", "no-store");
    http_reply_sse(req, &src);
}

#define P "/v1/projects/{project_id}/contact"

const http_route_t api_contact_workspace_routes[] = {
    {"GET", P "/queue", queue_list, 0},
    {"POST", P "/queue/{conv_id}:pick", queue_pick, 0},
    {"GET", P "/dashboard", dashboard, 0},
    {"GET", P "/conversations", conv_list, 0},
    {"GET", P "/me/conversations", my_convs, 0},
    {"GET", P "/conversations/{conv_id}", conv_get, 0},
    {"GET", P "/conversations/{conv_id}/transcript", conv_transcript, 0},
    {"POST", P "/conversations/{conv_id}:reply", conv_reply, HTTP_JSON},
    {"POST", P "/conversations/{conv_id}/notes", conv_note, HTTP_JSON},
    {"POST", P "/conversations/{conv_id}:transfer", conv_transfer, HTTP_JSON},
    {"POST", P "/conversations/{conv_id}:close", conv_close, HTTP_JSON},
    {"GET", P "/events", events, 0},
};
const size_t api_contact_workspace_nroutes =
    sizeof api_contact_workspace_routes / sizeof api_contact_workspace_routes[0];
