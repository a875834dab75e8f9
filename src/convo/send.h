/* send.h: accepting outbound messages (POST messages:send) and showing what each channel
 * would receive (POST messages:transcode). Sending resolves the recipient (creating a
 * contact for unknown identities, as Sinch does), picks the ordered list of channels to
 * try, and stores the message and its delivery job in one transaction: once the caller
 * has {message_id, accepted_time}, the message survives any crash. Delivery itself is the
 * dispatcher's (src/dispatch/deliver.c). */
#ifndef PARLEY_CONVO_SEND_H
#define PARLEY_CONVO_SEND_H

#include "convo/convo.h"

/* Default time a message may take to be delivered before it fails (MESSAGE_EXPIRED). */
#define CONVO_SEND_TTL_DEFAULT_S (24 * 3600)

/* SendMessageRequest -> {message_id, accepted_time}: convo_send_prepare, then
 * convo_send_commit on the same connection. */
json_t *convo_send(const convo_ctx_t *cx, json_t *body, err_t *e);

/* The two halves of convo_send, so that the write can run in a group commit (store/group.h):
 * prepare checks the whole request and reads the app, writing nothing (an error here is the
 * request's precise 400/404); commit resolves the recipient and stores the message and its
 * delivery job in one transaction (a savepoint inside an enclosing one) and answers
 * {message_id, accepted_time}. The plan borrows from body (keep it alive until the plan is
 * freed) and may be committed on another thread's connection (cx->conn). */
typedef struct convo_send_plan convo_send_plan_t;
convo_send_plan_t *convo_send_prepare(const convo_ctx_t *cx, json_t *body, err_t *e);
json_t *convo_send_commit(const convo_ctx_t *cx, const convo_send_plan_t *p, err_t *e);
void convo_send_plan_free(convo_send_plan_t *p);
/* TranscodeMessageRequest {app_id, app_message, channels} -> {transcoded_message: {CH: text}}. */
json_t *convo_transcode(const convo_ctx_t *cx, json_t *body, err_t *e);
/* The channel message an adapter (or, for SMS, the text renderer) makes of app_message:
 * new reference, or NULL with INVALID_ARGUMENT naming the channel and the reason. */
json_t *convo_transcode_one(convo_channel_t ch, json_t *app_message, err_t *e);

#endif
