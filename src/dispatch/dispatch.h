/* dispatch.h: the delivery worker. One thread runs a libcurl multi loop over the outbox:
 * it claims due rows with a lease and runs them by kind: 'deliver' sends a message through
 * its channel adapter, falling back to the next channel on a permanent failure (see
 * deliver.c); 'callback' POSTs each callback to its webhook (signed as the Sinch
 * SDK's validateWebhookSignature expects; with an OAuth2 bearer token for webhooks with
 * client_credentials), deletes the row on a 2xx and otherwise schedules a retry with
 * exponential backoff and jitter until the row expires (25 h after it was written).
 *
 * Fairness: at most per_target requests are in flight for one webhook (or message) and
 * per_app for one app, so a target or provider that hangs or fails slows only its own
 * app's traffic. Ordering: callbacks are claimed in the order
 * they were written, per webhook; with retries and up to per_target in parallel, arrival
 * order is not guaranteed (each body carries accepted_time/event_time). Delivery is at
 * least once: a crash after a POST but before the row is deleted sends it again. */
#ifndef PARLEY_DISPATCH_H
#define PARLEY_DISPATCH_H

#include "base/buf.h"
#include "base/err.h"
#include "convo/convo.h"
#include "store/store.h"

#include <stdint.h>

typedef struct {
    int max_inflight;  /* requests in flight in all (default 64) */
    int per_target;    /* per webhook or message (default 4) */
    int per_app;       /* per app, so one app's slow provider cannot take every slot
                          (default max_inflight / 4) */
    int timeout_ms;    /* per request (default 10000) */
    int retry_base_ms; /* first retry delay (default 1000); doubles each attempt */
    int retry_max_ms;  /* cap on the delay (default 3600000) */
    int poll_ms;       /* how often to look for due rows without a nudge (default 200) */
    struct sms *sms;   /* the SMS channel's SMPP sessions (NULL: SMS cannot send) */
    /* Provider API base per channel (NULL = the adapter's default, the real host). */
    const char *base_url[CONVO_CHANNEL_COUNT];
    /* The group-commit writer (NULL: none). Each turn's store work (outcomes, claims) then
     * runs as one unit of the writer's batch instead of taking the write lock itself, so
     * the dispatcher and messages:send never wait for each other's transactions. It must
     * outlive the dispatcher (stop the dispatcher first). */
    struct store_group *writer;
} dispatch_opts_t;

typedef struct dispatch dispatch_t;

/* Starts the worker thread. Leases left by a previous process are released first (one
 * process owns a data dir). seal_key opens webhook secrets. */
dispatch_t *dispatch_start(store_t *store, const uint8_t seal_key[32], const dispatch_opts_t *o,
                           err_t *e);
/* Stops taking work, abandons requests in flight (their rows stay for the next start). */
void dispatch_stop(dispatch_t *d);
/* Prometheus text: delivered, failed attempts, given up, in flight. */
void dispatch_metrics_render(buf_t *out);

#endif
