/* inbound.h: what providers tell Parley through their webhooks, stored: a contact's
 * message (its contact created if unknown, its conversation started if none is active,
 * the message stored TO_APP, MESSAGE_INBOUND queued) and delivery receipts (the sent
 * message's status moved forward, MESSAGE_DELIVERY queued). A provider retrying a webhook
 * does not store a message twice: provider ids are remembered. Parsing the provider's
 * format is the channel adapter's job (src/channels); this file sees only events. */
#ifndef PARLEY_CONVO_INBOUND_H
#define PARLEY_CONVO_INBOUND_H

#include "channels/channel.h"
#include "convo/convo.h"

/* The project that owns app_id (any project: provider webhooks carry no credentials of
 * ours). NOT_FOUND for an unknown app. */
int convo_inbound_project(store_conn_t *c, const char *app_id, char project_id[ULID_LEN + 1],
                          err_t *e);
/* Store every event of one webhook delivery in one transaction (begin/commit here). */
int convo_inbound_store(const convo_ctx_t *cx, const char *app_id, convo_channel_t ch,
                        const channel_events_t *ev, err_t *e);

#endif
