/* handover.c: the `contact-handover` node (Parley's own): hands the msg's conversation to
 * the contact center by appending a CONTACT_HANDOVER stream event {conversation_id,
 * contact_id, app_id, channel, category, priority}, and ends the flows' handling of that
 * conversation: a waiting "await response" is dropped and inbound messages of the
 * conversation start no flow until it stops or a CONTACT_HANDBACK event names it
 * (flows_handovers, read by convapi.c). Fields: category (string), priority (integer,
 * default 0). The msg goes on to output 1 with msg.handover = the event payload. */
#include "base/clock.h"
#include "base/nudge.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"
#include "stream/stream.h"

#include <stdlib.h>
#include <string.h>

static void handover_validate(const json_t *cfg, flows_problems_t *p)
{
    int ok;
    double pr = io_num(cfg, "priority", 0, &ok);
    if (!ok || pr != (double)(long long)pr)
        flows_problem(p, flows_problems_node(p), "priority", "priority must be an integer");
}

static const char *path_str(json_t *msg, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(msg, a);
    if (b) v = json_object_get(v, b);
    if (c) v = json_object_get(v, c);
    return json_string_value(v);
}

static void handover_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    /* the conversation: Sinch's msg.lastResponse (an inbound message), else msg fields */
    const char *conv = path_str(msg, "lastResponse", "message", "conversationId");
    const char *contact = path_str(msg, "lastResponse", "message", "contactId");
    const char *app = path_str(msg, "lastResponse", "appId", NULL);
    json_t *ci = json_object_get(json_object_get(json_object_get(msg, "lastResponse"), "message"),
                                 "channelIdentity");
    const char *channel = json_string_value(json_object_get(ci, "channel"));
    if (!conv) conv = path_str(msg, "conversationId", NULL, NULL);
    if (!contact) contact = path_str(msg, "contact", "contactId", NULL);
    if (!app) app = path_str(msg, "appId", NULL, NULL);
    if (!conv || !*conv) {
        flows_error(n, msg,
                    "contact-handover needs a conversation: msg.lastResponse.message."
                    "conversationId (a received message) or msg.conversationId");
        return;
    }
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "conversation_id", conv, "contact_id",
                           contact ? contact : "", "app_id", app ? app : "", "channel",
                           channel ? channel : "", "category", io_str(cfg, "category", ""),
                           "priority", (json_int_t)io_num(cfg, "priority", 0, NULL));
    convo_ctx_t cx;
    err_t e = {0};
    char actor[300];
    snprintf(actor, sizeof actor, "flow:%s", flows_node_id(n));
    int rc = flows_node_convo(n, &cx, &e), settle = 0;
    char *text = json_dumps(ev, JSON_COMPACT);
    if (rc == 0) rc = store_begin(cx.conn, &e);
    if (rc == 0) {
        if (stream_append(cx.conn, flows_node_project(n), app ? app : "", "CONTACT_HANDOVER", text,
                          actor, &e) < 0 ||
            store_exec(cx.conn, &e,
                       "INSERT INTO flows_handovers (project_id, conversation_id, created_at) "
                       "VALUES ($1, $2, $3) ON CONFLICT (project_id, conversation_id) DO NOTHING",
                       "ssi", flows_node_project(n), conv, clock_now_ms()) < 0 ||
            (contact && store_exec(cx.conn, &e,
                                   "DELETE FROM flows_waits WHERE project_id = $1 AND contact_id "
                                   "= $2",
                                   "ss", flows_node_project(n), contact) < 0) ||
            (settle = flows_origin_settle(cx.conn, &e)) < 0 || store_commit(cx.conn, &e) < 0) {
            store_rollback(cx.conn);
            rc = -1;
        }
    }
    free(text);
    if (rc < 0) {
        json_decref(ev);
        flows_error(n, msg, "handover failed: %s", e.message);
        return;
    }
    if (settle > 0) flows_origin_settled(); /* the handover went with the inbox row */
    nudge_flush();
    json_object_set_new(msg, "handover", ev);
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_contact_handover = {
    .type = "contact-handover",
    .validate = handover_validate,
    .input = handover_input,
};
