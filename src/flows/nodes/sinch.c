/* sinch.c: the conversation nodes, with the type names and fields of Sinch's Node-RED
 * package (@sinch/node-red-conversation-api): sinch-convapi-configuration (names the app),
 * sinch-received-message (entry: inbound messages), sinch-events (entry: chosen callback
 * triggers), sinch-message (builds msg.message from JSON with {{variables}}),
 * sinch-start-conversation (msg.contact + msg.variables), sinch-send (sends msg.message
 * to msg.contact through convo_send; output 1 success, 2 failure; "await response" parks
 * the conversation in flows_waits until the contact's next message or the timeout).
 * Entry messages arrive from convapi.c as flows_post tasks (flows_sinch_deliver_*). */
#include "base/buf.h"
#include "base/clock.h"
#include "base/ulid.h"
#include "convo/messages.h"
#include "convo/send.h"
#include "flows/convapi.h"
#include "flows/flows.h"
#include "flows/mustache.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The app a node is bound to through its convapiConfiguration ("" = any / unbound). */
static const char *bound_app(flows_node_t *n)
{
    flows_node_t *cfgn = flows_node_ref(n, "convapiConfiguration");
    if (!cfgn) return "";
    return io_str(flows_node_config(cfgn), "appId", "");
}

static void check_config_ref(const json_t *cfg, flows_problems_t *p)
{
    const char *ref = io_str(cfg, "convapiConfiguration", "");
    if (*ref && !flows_problems_has_node(p, ref, "sinch-convapi-configuration"))
        flows_problem(p, flows_problems_node(p), "convapiConfiguration",
                      "no sinch-convapi-configuration node with id \"%s\"", ref);
}

/* ---- sinch-convapi-configuration ---- */

static void config_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *app = io_str(cfg, "appId", "");
    if (*app && !ulid_valid(app))
        flows_problem(p, flows_problems_node(p), "appId", "appId \"%s\" is not an app id", app);
}

const flows_node_type_t flows_type_sinch_config = {
    .type = "sinch-convapi-configuration",
    .config_only = 1,
    .validate = config_validate,
};

/* ---- sinch-received-message ---- */

static void rx_input(flows_node_t *n, json_t *msg)
{
    flows_send(n, 0, msg);
}

void flows_sinch_deliver_inbound(flows_node_t *n, void *arg)
{
    flows_inbox_item_t *it = arg;
    json_t *msg = flows_inbox_msg(it);
    const char *app = bound_app(n);
    const char *got =
        json_string_value(json_object_get(json_object_get(msg, "lastResponse"), "appId"));
    json_t *out = NULL;
    if (!*app || (got && strcmp(app, got) == 0)) out = json_deep_copy(msg);
    flows_inbox_item_done(it);
    if (out) {
        json_t *m = flows_msg_new();
        json_object_update(m, out);
        json_decref(out);
        flows_send(n, 0, m);
    }
}

const flows_node_type_t flows_type_sinch_received = {
    .type = "sinch-received-message",
    .validate = check_config_ref,
    .input = rx_input,
};

/* ---- sinch-events ---- */

static void events_validate(const json_t *cfg, flows_problems_t *p)
{
    if (!*io_str(cfg, "events", ""))
        flows_problem(p, flows_problems_node(p), "events",
                      "events must list at least one trigger (e.g. \"message,"
                      "messageDeliveryReport\")");
}

void flows_sinch_deliver_event(flows_node_t *n, void *arg)
{
    flows_inbox_item_t *it = arg;
    json_t *body = flows_inbox_msg(it);
    const char *events = io_str(flows_node_config(n), "events", "");
    json_t *out = NULL;
    /* Sinch: send when one of the body's keys is among the chosen triggers */
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (k[0] == '_' || !json_is_object(v)) continue;
        size_t kl = strlen(k);
        for (const char *p = events; *p;) {
            const char *c = strchr(p, ',');
            size_t l = c ? (size_t)(c - p) : strlen(p);
            while (l && *p == ' ')
                p++, l--;
            while (l && p[l - 1] == ' ')
                l--;
            if (l == kl && memcmp(p, k, l) == 0) out = json_deep_copy(body);
            if (!c) break;
            p = c + 1;
        }
        if (out) break;
    }
    flows_inbox_item_done(it);
    if (out) {
        json_object_del(out, "_flowsTrigger");
        json_t *m = flows_msg_new();
        json_object_update(m, out);
        json_decref(out);
        flows_send(n, 0, m);
    }
}

const flows_node_type_t flows_type_sinch_events = {
    .type = "sinch-events",
    .validate = events_validate,
    .input = rx_input,
};

/* ---- sinch-message ---- */

static void message_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *m = io_str(cfg, "message", "");
    err_t e = {0};
    flows_mustache_t *t = flows_mustache_compile(m, strlen(m), &e);
    if (!t) flows_problem(p, flows_problems_node(p), "message", "bad {{variables}}: %s", e.message);
    flows_mustache_free(t);
}

static json_t *parse_maybe(json_t *v)
{
    if (json_is_string(v)) {
        json_t *j = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        return j ? j : json_object();
    }
    return v ? json_incref(v) : json_object();
}

static void message_input(flows_node_t *n, json_t *msg)
{
    json_t *given = json_object_get(msg, "message");
    char *text = NULL;
    if (json_is_string(given) && *json_string_value(given))
        text = xstrdup(json_string_value(given));
    else if (json_is_object(given))
        text = json_dumps(given, JSON_COMPACT);
    else if (*io_str(flows_node_config(n), "message", ""))
        text = xstrdup(io_str(flows_node_config(n), "message", ""));
    if (!text) {
        flows_error(n, msg, "No message configured nor provided to the node input");
        return;
    }
    err_t e = {0};
    flows_mustache_t *t = flows_mustache_compile(text, strlen(text), &e);
    free(text);
    if (!t) {
        flows_error(n, msg, "bad {{variables}} in message: %s", e.message);
        return;
    }
    json_t *vars = parse_maybe(json_object_get(msg, "variables"));
    json_t *views[2] = {msg, vars};
    flows_mustache_opts_t o = {.json = FLOWS_MUSTACHE_JSON_FULL, .no_html = 1};
    buf_t out;
    buf_init(&out);
    flows_mustache_render(t, views, 2, &o, &out);
    flows_mustache_free(t);
    json_decref(vars);
    json_error_t je;
    json_t *m = json_loadb(out.data ? out.data : "", out.len, 0, &je);
    buf_free(&out);
    if (!json_is_object(m)) {
        json_decref(m);
        flows_error(n, msg, "message is not a JSON object: %s (line %d)", je.text, je.line);
        return;
    }
    json_object_set_new(msg, "message", m);
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_sinch_message = {
    .type = "sinch-message",
    .validate = message_validate,
    .input = message_input,
};

/* ---- sinch-start-conversation ---- */

static void start_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *vars = io_str(cfg, "variables", "");
    if (*vars) {
        json_error_t je;
        json_t *v = json_loads(vars, 0, &je);
        if (!json_is_object(v))
            flows_problem(p, id, "variables", "variables must be a JSON object: %s", je.text);
        json_decref(v);
    }
    json_t *ci = json_object_get(cfg, "channelIdentities");
    if (ci && !json_is_array(ci))
        flows_problem(p, id, "channelIdentities", "channelIdentities must be an array");
    size_t i;
    json_t *x;
    json_array_foreach(ci, i, x)
    {
        const char *ch = io_str(x, "channel", "");
        char f[64];
        snprintf(f, sizeof f, "channelIdentities[%zu].channel", i);
        err_t e = {0};
        if (*ch && convo_channel_parse(ch, f, &e) < 0) flows_problem(p, id, f, "%s", e.message);
    }
}

static void start_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    json_t *ids = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(cfg, "channelIdentities"), i, x)
    {
        const char *ch = io_str(x, "channel", ""), *id = io_str(x, "identity", "");
        if (*ch && *id)
            json_array_append_new(ids, json_pack("{s:s,s:s}", "channel", ch, "identity", id));
    }
    json_object_set_new(msg, "contact", json_pack("{s:o}", "channelIdentities", ids));
    const char *vars = io_str(cfg, "variables", "");
    json_t *v = *vars ? json_loads(vars, 0, NULL) : NULL;
    json_object_set_new(msg, "variables", v ? v : json_object());
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_sinch_start = {
    .type = "sinch-start-conversation",
    .validate = start_validate,
    .input = start_input,
};

/* ---- sinch-send ---- */

#define SEND_TIMEOUT_DEFAULT_S 86400

typedef struct {
    json_t *timers; /* wait id -> timer id */
} send_state_t;

/* "3s", "2m", "1h", "90" -> seconds; -1 when bad, 0 when empty. */
static long parse_ttl(const char *s)
{
    if (!s || !*s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return -1;
    double mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    else if (*end == 'd')
        mul = 86400, end++;
    if (*end) return -1;
    return (long)(v * mul);
}

static void send_validate(const json_t *cfg, flows_problems_t *p)
{
    check_config_ref(cfg, p);
    if (parse_ttl(io_str(cfg, "ttl", "")) < 0)
        flows_problem(p, flows_problems_node(p), "ttl", "ttl must look like 30s, 2m or 1h");
    int ok;
    double t = io_num(cfg, "timeout", SEND_TIMEOUT_DEFAULT_S, &ok);
    if (!ok || t <= 0)
        flows_problem(p, flows_problems_node(p), "timeout",
                      "timeout must be a positive number of seconds");
}

static void fail_out(flows_node_t *n, json_t *msg, const char *prefix, const char *detail)
{
    char m[600];
    snprintf(m, sizeof m, "%s%s", prefix, detail);
    json_object_set_new(msg, "error", json_pack("{s:s}", "message", m));
    /* as Sinch's node: an error (catchable) and the msg on the failure output */
    flows_error(n, flows_msg_clone(msg), "%s", m);
    json_t *ports = json_pack("[n,o]", msg);
    flows_send_ports(n, ports);
}

typedef struct {
    char wid[ULID_LEN + 1];
} wait_arg_t;

static void wait_timeout(flows_node_t *n, void *arg)
{
    wait_arg_t *w = arg;
    send_state_t *s = flows_node_state(n);
    if (s) json_object_del(s->timers, w->wid);
    convo_ctx_t cx;
    err_t e = {0};
    if (flows_node_convo(n, &cx, &e) < 0) {
        flows_warn(n, "await timeout: %s", e.message);
        free(w);
        return;
    }
    store_stmt_t *st =
        store_query(cx.conn, &e, "SELECT msg FROM flows_waits WHERE id = $1", "s", w->wid);
    json_t *msg = NULL;
    if (st && store_step(st, &e) == 1) msg = json_loads(store_col_text(st, 0), 0, NULL);
    store_done(st);
    /* the DELETE decides between this timeout and an answer being consumed right now */
    int64_t gone =
        msg ? store_exec(cx.conn, &e, "DELETE FROM flows_waits WHERE id = $1", "s", w->wid) : 0;
    free(w);
    if (gone != 1) {
        json_decref(msg);
        return;
    }
    json_t *m = flows_msg_new();
    json_object_update(m, msg);
    json_decref(msg);
    json_object_set_new(m, "error",
                        json_pack("{s:s}", "message", "no response from the contact in time"));
    json_object_set_new(m, "timeout", json_true());
    flows_send_ports(n, json_pack("[n,o]", m));
}

static void arm(flows_node_t *n, const char *wid, int64_t delay)
{
    send_state_t *s = flows_node_state(n);
    wait_arg_t *w = xcalloc(1, sizeof *w);
    snprintf(w->wid, sizeof w->wid, "%s", wid);
    uint64_t t = flows_timer(n, delay < 0 ? 0 : delay, wait_timeout, w, free);
    json_object_set_new(s->timers, wid, json_integer((json_int_t)t));
}

static int send_start(flows_node_t *n, err_t *e)
{
    send_state_t *s = xcalloc(1, sizeof *s);
    s->timers = json_object();
    flows_node_set_state(n, s);
    if (!io_bool(flows_node_config(n), "receive", 0)) return 0;
    /* waits that survived a restart or a redeploy: re-arm their timeouts */
    convo_ctx_t cx;
    if (flows_node_convo(n, &cx, e) < 0) return -1;
    store_stmt_t *st = store_query(
        cx.conn, e, "SELECT id, expires_at FROM flows_waits WHERE project_id = $1 AND node_id = $2",
        "ss", flows_node_project(n), flows_node_id(n));
    if (!st) return -1;
    json_t *rows = json_object();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_object_set_new(rows, store_col_text(st, 0), json_integer(store_col_int(st, 1)));
    store_done(st);
    const char *k;
    json_t *v;
    int64_t now = clock_now_ms();
    json_object_foreach(rows, k, v) arm(n, k, json_integer_value(v) - now);
    json_decref(rows);
    return rc < 0 ? -1 : 0;
}

static void send_stop(flows_node_t *n)
{
    send_state_t *s = flows_node_state(n);
    if (!s) return;
    json_decref(s->timers); /* the runtime cancels the timers themselves */
    free(s);
    flows_node_set_state(n, NULL);
}

static json_t *recipient_of(json_t *contact, const char *app, err_t *e)
{
    const char *cid = io_str(contact, "contactId", NULL);
    if (!cid) cid = io_str(contact, "contact_id", NULL);
    if (cid && *cid) return json_pack("{s:s}", "contact_id", cid);
    json_t *ids = json_object_get(contact, "channelIdentities");
    if (!ids) ids = json_object_get(contact, "channel_identities");
    json_t *out = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x)
    {
        const char *ch = io_str(x, "channel", ""), *id = io_str(x, "identity", "");
        if (!*ch || !*id) continue;
        json_t *ci = json_pack("{s:s,s:s}", "channel", ch, "identity", id);
        if (*app) json_object_set_new(ci, "app_id", json_string(app));
        json_array_append_new(out, ci);
    }
    if (!json_array_size(out)) {
        json_decref(out);
        err_set(e, ERR_INVALID_ARGUMENT, "msg.contact has no contactId and no channel identity");
        return NULL;
    }
    return json_pack("{s:{s:o}}", "identified_by", "channel_identities", out);
}

static void send_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    int receive = io_bool(cfg, "receive", 0);
    const char *app = bound_app(n);
    if (!*app)
        app =
            json_string_value(json_object_get(json_object_get(msg, "lastResponse"), "appId")) ?: "";
    if (!*app) app = io_str(msg, "appId", "");
    json_t *message = json_object_get(msg, "message"), *contact = json_object_get(msg, "contact");
    if (!message || !contact) {
        fail_out(n, msg, "", "No message or contact provided on input");
        return;
    }
    if (!*app) {
        fail_out(n, msg, "",
                 "no app: select a Conversation API configuration, or send in reply to a "
                 "received message");
        return;
    }
    err_t e = {0};
    json_t *rcpt = recipient_of(contact, app, &e);
    if (!rcpt) {
        fail_out(n, msg, "Failed to send message: ", e.message);
        return;
    }
    json_t *body = json_pack("{s:s,s:o,s:o}", "app_id", app, "recipient", rcpt, "message",
                             parse_maybe(message));
    long ttl = parse_ttl(io_str(cfg, "ttl", ""));
    if (ttl > 0) json_object_set_new(body, "ttl", json_sprintf("%lds", ttl));
    /* One transaction: the message, the wait for its answer and the removal of the inbox
     * row that started this flow commit together (flows_origin_settle), so a crash either
     * runs the flow again up to here or finds the message sent and the wait parked. */
    convo_ctx_t cx;
    if (flows_node_convo(n, &cx, &e) < 0 || store_begin(cx.conn, &e) < 0) {
        json_decref(body);
        fail_out(n, msg, "Failed to send message: ", e.message);
        return;
    }
    json_t *res = convo_send(&cx, body, &e);
    json_decref(body);
    if (!res) {
        store_rollback(cx.conn);
        fail_out(n, msg, "Failed to send message: ", e.message);
        return;
    }
    const char *mid = io_str(res, "message_id", "");
    json_object_set_new(msg, "messageId", json_string(mid));
    json_t *sent = NULL;
    char wid[ULID_LEN + 1] = "";
    int64_t delay = 0;
    if (receive) { /* await response: park the conversation until the contact's next message */
        sent = convo_message_get(&cx, mid, &e);
        const char *contact_id = sent ? io_str(sent, "contact_id", "") : "";
        const char *conv = sent ? io_str(sent, "conversation_id", "") : "";
        if (!*contact_id) {
            store_rollback(cx.conn);
            json_decref(sent);
            json_decref(res);
            fail_out(n, msg, "cannot await a response: ",
                     e.message[0] ? e.message : "the sent message has no contact");
            return;
        }
        double timeout_s = io_num(cfg, "timeout", SEND_TIMEOUT_DEFAULT_S, NULL);
        delay = (int64_t)(timeout_s * 1000);
        ulid_new(wid);
        char *text = json_dumps(msg, JSON_COMPACT);
        int64_t now = clock_now_ms();
        int rc = store_exec(cx.conn, &e,
                            "DELETE FROM flows_waits WHERE project_id = $1 AND app_id = $2 AND "
                            "contact_id = $3",
                            "sss", flows_node_project(n), app, contact_id) < 0
                     ? -1
                     : 0;
        if (rc == 0)
            rc = store_exec(cx.conn, &e,
                            "INSERT INTO flows_waits (id, project_id, app_id, contact_id, "
                            "conversation_id, node_id, msg, expires_at, created_at) VALUES ($1, "
                            "$2, $3, $4, $5, $6, $7, $8, $9)",
                            "sssssssii", wid, flows_node_project(n), app, contact_id, conv,
                            flows_node_id(n), text, now + delay, now) < 0
                     ? -1
                     : 0;
        free(text);
        json_decref(sent);
        if (rc < 0) {
            store_rollback(cx.conn);
            json_decref(res);
            fail_out(n, msg, "cannot await a response: ", e.message);
            return;
        }
    }
    json_decref(res);
    int settle = flows_origin_settle(cx.conn, &e);
    if (settle < 0 || store_commit(cx.conn, &e) < 0) {
        if (settle < 0) store_rollback(cx.conn);
        json_object_del(msg, "messageId");
        fail_out(n, msg, "Failed to send message: ", e.message);
        return;
    }
    if (settle) flows_origin_settled();
    if (!receive) {
        flows_send(n, 0, msg);
        return;
    }
    arm(n, wid, delay);
    flows_status(n, "blue", "ring", "waiting for response");
    json_decref(msg); /* done for now, as Sinch's node: the answer starts a new leg */
}

void flows_sinch_deliver_resume(flows_node_t *n, void *arg)
{
    flows_inbox_item_t *it = arg;
    json_t *saved = flows_inbox_msg(it);
    const char *wid = io_str(saved, "_flowsWait", "");
    send_state_t *s = flows_node_state(n);
    json_t *t = s ? json_object_get(s->timers, wid) : NULL;
    if (t) {
        flows_timer_cancel(n, (uint64_t)json_integer_value(t));
        json_object_del(s->timers, wid);
    }
    json_t *m = flows_msg_new();
    json_object_update(m, saved);
    json_object_del(m, "_flowsWait");
    flows_inbox_item_done(it);
    flows_status(n, NULL, NULL, NULL);
    flows_send(n, 0, m);
}

const flows_node_type_t flows_type_sinch_send = {
    .type = "sinch-send",
    .validate = send_validate,
    .start = send_start,
    .input = send_input,
    .stop = send_stop,
};
