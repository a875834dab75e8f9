/* events.h: Conversation API callbacks. A change that Sinch reports to webhooks (a contact
 * created, a conversation stopped, a message received) calls convo_event_emit inside the
 * transaction that makes the change; it writes one outbox row per matching webhook with
 * the exact callback body, in the shape @sinch/sdk-core's parseEvent recognises:
 * {"app_id","project_id","accepted_time","event_time", <payload_key>: payload}.
 * The dispatcher (src/dispatch) delivers the rows. */
#ifndef PARLEY_CONVO_EVENTS_H
#define PARLEY_CONVO_EVENTS_H

#include "convo/convo.h"

/* Queue `trigger` for app_id's webhooks: payload (borrowed) goes under payload_key, e.g.
 * ("CONTACT_CREATE", "contact_create_notification", {"contact": {...}}). Must run inside
 * the caller's write transaction. DISMISS webhooks get nothing. */
int convo_event_emit(const convo_ctx_t *cx, const char *app_id, const char *trigger,
                     const char *payload_key, json_t *payload, err_t *e);
/* The same with extra envelope fields (borrowed object, may be NULL), e.g.
 * {"message_metadata": "...", "correlation_id": "...", "conversation_metadata": {...}}. */
int convo_event_emit_ex(const convo_ctx_t *cx, const char *app_id, const char *trigger,
                        const char *payload_key, json_t *payload, json_t *extra, err_t *e);
/* The same for every app of the project (contact events are project-wide in Parley). */
int convo_event_emit_project(const convo_ctx_t *cx, const char *trigger, const char *payload_key,
                             json_t *payload, err_t *e);

/* Message callbacks for a stored message (its ConversationMessage JSON, borrowed), with
 * message_metadata and correlation_id in the envelope (app_id: the message's app), and the
 * conversation's metadata as conversation_metadata when the app's conversation_metadata_report_view
 * is FULL. MESSAGE_DELIVERY  message_delivery_report {message_id, conversation_id, status,
 *                     channel_identity, contact_id, reason?, metadata, processing_mode}
 *   MESSAGE_SUBMIT    message_submit_notification {..., submitted_message}
 *   MESSAGE_INBOUND   message {the ConversationMessage} */
int convo_event_delivery(const convo_ctx_t *cx, const char *app_id, json_t *message,
                         const char *status, const char *reason_code, const char *description,
                         err_t *e);
/* The provider took the message: MESSAGE_DELIVERY with status QUEUED_ON_CHANNEL, then
 * MESSAGE_SUBMIT, from one lookup of the envelope's extras. */
int convo_event_sent(const convo_ctx_t *cx, const char *app_id, json_t *message, err_t *e);
int convo_event_inbound(const convo_ctx_t *cx, const char *app_id, json_t *message, err_t *e);

/* A webhook as the dispatcher needs it: target and secrets unsealed. NULL if gone. */
typedef struct {
    char *target;
    char *secret;               /* NULL: callbacks are not signed */
    json_t *client_credentials; /* NULL or {client_id, client_secret, endpoint, scope?,
                                   token_request_type} */
} convo_webhook_target_t;

int convo_webhook_target(const convo_ctx_t *cx, const char *webhook_id, convo_webhook_target_t *out,
                         err_t *e);
void convo_webhook_target_free(convo_webhook_target_t *t);

#endif
