/* convapi.h: Flows' side of the Conversation API (convapi.c): the "flows" stream consumer
 * that feeds the conversation entry points (sinch-received-message, sinch-events), resumes
 * conversations waiting at a sinch-send "await response" node, and the waits themselves.
 *
 * Guarantee: the consumer handles each stream event inside the transaction that advances
 * its cursor and only writes rows there (flows_inbox, and the removal of a wait it
 * resumes); after the commit each inbox row is posted to its nodes as an origin (node.h).
 * The row stays until the message's work is done (every task, timer and HTTP request
 * that came of it), or goes inside the transaction of the first message a sinch-send sends
 * (or the handover a contact-handover makes) for it. A crash before the consumer's commit
 * replays the event; after it, the rows still there are posted again at start. So a flow
 * runs to its first send exactly once; it may run again from the start after a crash if
 * it had sent nothing yet, and past the first send a crash ends it (at most once). */
#ifndef PARLEY_FLOWS_CONVAPI_H
#define PARLEY_FLOWS_CONVAPI_H

#include "base/err.h"
#include "flows/node.h"
#include "store/store.h"

#include <jansson.h>

#define FLOWS_CONSUMER "flows" /* its stream cursor */

/* Start/stop the consumer thread ("flows"). Call after the flows runtime has loaded the
 * deployed sets (flows_nodes_of_type must answer), stop before the runtime stops. A new
 * consumer starts at the stream's head (no replay of history). */
int flows_convapi_start(store_t *s, err_t *e);
void flows_convapi_stop(void);

/* An inbox row being delivered to one node (the task arg of the deliveries below). */
typedef struct flows_inbox_item flows_inbox_item_t;
/* The msg (borrowed; the node json_incref's or copies what it keeps). */
json_t *flows_inbox_msg(flows_inbox_item_t *it);
/* The node took it (the row goes with the origin, see above). Frees it. */
void flows_inbox_item_done(flows_inbox_item_t *it);

/* sinch.c: the node-side deliveries (flows_post tasks, executor thread). Each ends with
 * flows_inbox_item_done. */
void flows_sinch_deliver_inbound(flows_node_t *n, void *item);
void flows_sinch_deliver_event(flows_node_t *n, void *item);
void flows_sinch_deliver_resume(flows_node_t *n, void *item);

/* The camelCase form of a Sinch callback body (keys only; new ref), as Sinch's Node-RED
 * package hands callbacks to flows. */
json_t *flows_sinch_camel(const json_t *v);

#endif
