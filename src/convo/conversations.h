/* conversations.h: the Conversation API's conversations (table conversations): create,
 * get, list, recent, update (REPLACE or RFC 7386 MERGE_PATCH of metadata_json), stop,
 * delete (with its messages) and inject-message; plus find-or-start, which the send and
 * receive paths use inside their own transaction. At most one active conversation per
 * app and contact.
 *
 * Returned json_t values are new references owned by the caller; NULL means e is filled. */
#ifndef PARLEY_CONVO_CONVERSATIONS_H
#define PARLEY_CONVO_CONVERSATIONS_H

#include "convo/convo.h"

/* GET /conversations query parameters, raw (NULL = absent); every one is validated. */
typedef struct {
    const char *app_id, *contact_id, *only_active, *active_channel;
    const char *page_size, *page_token;
} convo_conversation_query_t;

/* GET /conversations:recent query parameters. */
typedef struct {
    const char *app_id; /* required */
    const char *only_active, *page_size, *page_token;
    const char *order; /* ASC | DESC (default) */
} convo_conversation_recent_query_t;

/* body: CreateConversationRequest. Returns the Conversation. */
json_t *convo_conversation_create(const convo_ctx_t *cx, json_t *body, err_t *e);
json_t *convo_conversation_get(const convo_ctx_t *cx, const char *id, err_t *e);
/* {conversations, next_page_token, total_size} in id order. */
json_t *convo_conversation_list(const convo_ctx_t *cx, const convo_conversation_query_t *q,
                                err_t *e);
/* {conversations: [{conversation, last_message?}], next_page_token, total_size}, ordered
 * by (last_received, id); the page token is keyset over that pair. */
json_t *convo_conversation_recent(const convo_ctx_t *cx, const convo_conversation_recent_query_t *q,
                                  err_t *e);
/* body: Conversation; mask: parsed update_mask (paths metadata, metadata_json,
 * active_channel, correlation_id); strategy: REPLACE (NULL) or MERGE_PATCH. */
json_t *convo_conversation_update(const convo_ctx_t *cx, const char *id, json_t *body,
                                  const convo_mask_t *mask, const char *strategy, err_t *e);
/* Paths update_mask accepts (NULL-terminated). */
extern const char *const convo_conversation_mask_paths[];
/* Sets active = false; FAILED_PRECONDITION when already inactive. Returns {}. */
json_t *convo_conversation_stop(const convo_ctx_t *cx, const char *id, err_t *e);
/* Deletes the conversation and its messages. Returns {}. */
json_t *convo_conversation_delete(const convo_ctx_t *cx, const char *id, err_t *e);
/* body: InjectMessageRequest. Stores the message (injected, not sent). Returns {}. */
json_t *convo_conversation_inject_message(const convo_ctx_t *cx, const char *id, json_t *body,
                                          err_t *e);

/* Inside the caller's transaction: the active conversation of app and contact, or a new
 * one (*started = 1). channel (NULL/"" = leave as is) becomes its active_channel. The app
 * and contact must exist (the caller checked). */
int convo_conversation_find_or_start(const convo_ctx_t *cx, const char *app_id,
                                     const char *contact_id, const char *channel,
                                     char conv_id_out[ULID_LEN + 1], int *started, err_t *e);

#endif
