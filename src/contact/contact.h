/* contact.h: the contact center module's entry. contact_start runs its background worker
 * (one thread): the "contact" stream consumer (new inbound conversations on linked apps,
 * CONTACT_HANDOVER from Flows, customer messages and delivery statuses for the real-time
 * stream), the grace-period requeue of agents gone offline, stats ticks and the trimming
 * of old events. Routing itself (src/contact/routing.h) runs in whichever thread makes a
 * change. The domain API for handlers is routing.h; this header is for main.c. */
#ifndef PARLEY_CONTACT_H
#define PARLEY_CONTACT_H

#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

#include <stdint.h>

/* Start the worker. seal_key (32 bytes) is copied. 0 or -1 with e filled. */
#define CONTACT_CONSUMER "contact" /* the routing consumer's stream cursor */
int contact_start(store_t *s, const uint8_t *seal_key, const config_t *cfg, err_t *e);
/* Stop and join the worker and free the routing state. Safe without a start. */
void contact_stop(void);

/* One batch of the "contact" stream consumer, then the allocator's mirror of what it
 * queued (the worker's step; tests call it directly). Events handled, or -1. */
int contact_consume_once(store_t *s, err_t *e);

/* Flows tells whether it handles a new inbound conversation on an app; when it does, the
 * conversation does not enter the queue. NULL (the default) claims nothing. */
void contact_set_flow_claim(int (*claims)(const char *project_id, const char *app_id));

/* The HTTP layer's wake-up for SSE streams, called after events are committed. */
void contact_events_on_publish(void (*fn)(void));
/* Set the in-memory newest event id from the store (at start). */
void contact_events_seed(store_conn_t *c);

/* Routing's anonymize hook (gdpr.h contact_anonymize_fn), registered by contact_start. */
int contact_routing_anonymize(store_conn_t *c, const char *project_id, const char *contact_id,
                              err_t *e);

/* The seal key and store given to contact_start (NULL before), for handlers' contexts. */
const uint8_t *contact_seal_key(void);

#endif
