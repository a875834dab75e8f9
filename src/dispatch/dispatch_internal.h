/* dispatch_internal.h: what the dispatcher's files share: the job, the worker, and the
 * steps every job kind uses (issue an HTTP request, finish a row, schedule a retry).
 * A job kind implements start (1 = a request is in flight, 0 = the job is over) and
 * finish (called when its request completes; returns the same). */
#ifndef PARLEY_DISPATCH_INTERNAL_H
#define PARLEY_DISPATCH_INTERNAL_H

#include "dispatch/dispatch.h"
#include "channels/channel.h"
#include "convo/events.h"
#include "dispatch/sms.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct job job_t;

struct job {
    char kind[16];
    char id[ULID_LEN + 1], project_id[ULID_LEN + 1], app_id[ULID_LEN + 1], target_id[ULID_LEN + 1];
    char *payload;
    int64_t attempts, expires_at, due_at;
    int stage;
    CURL *easy;
    struct curl_slist *headers;
    buf_t resp;
    /* callback */
    convo_webhook_target_t wh;
    char *form;
    /* deliver */
    json_t *state, *message, *app;
    const channel_t *adapter;
    channel_http_t req;
    job_t *next;
};

typedef struct token token_t;

struct dispatch {
    store_t *store;
    uint8_t seal_key[32];
    dispatch_opts_t o;
    CURLM *multi;
    pthread_t thread;
    atomic_int stop;
    job_t *jobs; /* in flight */
    int inflight;
    token_t *tokens;
};

/* The worker's store context for a job's project (connection may be NULL: see log). */
convo_ctx_t dispatch_cx(dispatch_t *d, const job_t *j);
/* A curl handle for url with the common options (timeouts, protocols, body capture). */
CURL *dispatch_easy(dispatch_t *d, job_t *j, const char *url);
/* Perform an adapter-built request for j. 0 started, -1 could not. */
int dispatch_http(dispatch_t *d, job_t *j, const channel_http_t *h);
/* The job's row is finished: delete it. */
void dispatch_row_done(dispatch_t *d, job_t *j);
/* Schedule the row again after the backoff for j->attempts: 1 scheduled, 0 the row has
 * expired (the caller decides what expiry means for its kind). */
int dispatch_row_backoff(dispatch_t *d, job_t *j, const char *why);

int callback_start(dispatch_t *d, job_t *j);
int callback_finish(dispatch_t *d, job_t *j, CURLcode rc, long status);
void callback_tokens_free(dispatch_t *d);
/* What happened to a message on its current channel, recorded in one transaction with its
 * callbacks and the job's next step. Usable from any thread with its own connection (the
 * SMS sessions report from theirs). state is the job's payload (updated in place); app is
 * the internal app (for delivery-report fallback; may be NULL). */
typedef struct {
    convo_ctx_t cx;
    const char *app_id, *job_id, *message_id;
    json_t *state, *app;
} deliver_outcome_t;
void deliver_sent(deliver_outcome_t *o, const char *provider_ids);
/* Read the message and app of each 'deliver' job in the list, in the claim's transaction
 * (the group-commit writer's warm cache; one app read per app), for deliver_start. */
void deliver_preload(dispatch_t *d, job_t *claimed);
void deliver_fall_back(deliver_outcome_t *o, const char *code, const char *description);

int check_start(dispatch_t *d, job_t *j);
int check_finish(dispatch_t *d, job_t *j, CURLcode rc, long status);
int deliver_start(dispatch_t *d, job_t *j);
int deliver_finish(dispatch_t *d, job_t *j, CURLcode rc, long status);

extern atomic_uint_fast64_t dispatch_m_delivered, dispatch_m_failed, dispatch_m_gave_up,
    dispatch_m_inflight, dispatch_m_sent, dispatch_m_send_failed;

#endif
