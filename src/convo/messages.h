/* messages.h: the Conversation API's messages (table messages): the ConversationMessage
 * wire shape, list/get/update/delete, validation of message content (AppMessage and
 * ContactMessage, shared with messages:send), and storing a message inside a caller's
 * transaction (inject-message now; send and receive later).
 *
 * Returned json_t values are new references owned by the caller; NULL means e is filled. */
#ifndef PARLEY_CONVO_MESSAGES_H
#define PARLEY_CONVO_MESSAGES_H

#include "convo/conversations.h"
#include "convo/convo.h"

/* One messages row, every column. Strings are borrowed (the caller keeps them); NULL
 * means the column default ('' for text, SQL NULL for conversation_id, contact_id,
 * status_time and status_reason). project_id comes from the context and id is made
 * by convo_message_insert. */
typedef struct {
    const char *app_id;          /* required */
    const char *conversation_id; /* NULL: no conversation (DISPATCH mode) */
    const char *contact_id;      /* NULL: no contact (DISPATCH mode) */
    const char *direction;       /* required: "TO_APP" | "TO_CONTACT" */
    const char *channel;         /* "SMS", ... */
    const char *identity;        /* the contact's channel identity */
    const char *identity_app_id; /* app_id of app-scoped identities */
    int64_t accept_time;         /* ms */
    const char *kind;            /* required: "app_message" | "contact_message" */
    json_t *content;             /* required: that message object (borrowed; serialised) */
    const char *content_text;    /* optional: content already serialised (used instead) */
    const char *metadata;
    int injected;
    const char *sender_id;
    const char *processing_mode; /* NULL = "CONVERSATION" */
    const char *status;          /* NULL/"" = no status stored */
    int64_t status_time;         /* ms; used only with a status */
    const char *status_reason;
    const char *correlation_id;
} convo_message_row_t;

/* ---- content validation (exactly one message type; errors name the full path,
 * e.g. "app_message.choice_message.choices[2].url_message.url is required"). field is
 * the path of the message object itself ("app_message", "message"). 0 or -1. ---- */
int convo_message_check_app(json_t *app_message, const char *field, err_t *e);
int convo_message_check_contact(json_t *contact_message, const char *field, err_t *e);

/* ---- storage ---- */

/* Insert a message inside the caller's transaction (no begin/commit here). Also moves
 * the conversation's last_received forward (TO_APP) and touches its updated_at. */
int convo_message_insert(const convo_ctx_t *cx, const convo_message_row_t *m,
                         char id_out[ULID_LEN + 1], err_t *e);
/* Record a delivery status (QUEUED, QUEUED_ON_CHANNEL, SWITCHING_CHANNEL, DELIVERED, READ,
 * FAILED) with an optional reason text. Statuses never go backwards: a report that arrives
 * late (DELIVERED after READ, anything after FAILED) changes nothing and answers 0;
 * 1 when the status changed. channel/identity (NULL = keep) record the channel used. */
int convo_message_set_status(const convo_ctx_t *cx, const char *id, const char *status,
                             const char *reason, const char *channel, const char *identity,
                             const char *identity_app_id, err_t *e);
/* A stored message as ConversationMessage, or NULL with NOT_FOUND. */
json_t *convo_message_get(const convo_ctx_t *cx, const char *id, err_t *e);
/* The conversation's latest message (by accept_time, then id): 1 with *out set, 0 when
 * the conversation has none, -1 on error. */
int convo_message_last(const convo_ctx_t *cx, const char *conversation_id, json_t **out, err_t *e);

/* ---- the HTTP resource ---- */

/* GET /messages query parameters, raw (NULL = absent); every one is validated. */
typedef struct {
    const char *conversation_id, *contact_id, *app_id, *channel_identity, *channel, *direction;
    const char *start_time, *end_time;
    const char *page_size, *page_token;
    const char *view;                      /* WITH_METADATA | WITHOUT_METADATA */
    const char *messages_source;           /* CONVERSATION_SOURCE | DISPATCH_SOURCE */
    const char *only_recipient_originated; /* true | false */
} convo_message_query_t;

/* {messages, next_page_token, total_size}, ordered by id (= accept order). */
json_t *convo_message_list(const convo_ctx_t *cx, const convo_message_query_t *q, err_t *e);
/* messages_source (NULL = absent) is validated; get/update/delete do not filter on it. */
json_t *convo_message_read(const convo_ctx_t *cx, const char *id, const char *messages_source,
                           err_t *e);
/* body {metadata: string <= 1024}: sets metadata, returns the message. */
json_t *convo_message_update(const convo_ctx_t *cx, const char *id, const char *messages_source,
                             json_t *body, err_t *e);
/* Returns {} . */
json_t *convo_message_delete(const convo_ctx_t *cx, const char *id, const char *messages_source,
                             err_t *e);

#endif
