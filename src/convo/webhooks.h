/* webhooks.h: the Conversation API's webhooks (table `webhooks`): where and on which
 * triggers an app's callbacks are sent. Owns validation of targets, triggers, secrets and
 * OAuth2 client credentials, the limit of CONVO_WEBHOOKS_MAX webhooks per app, and sealing
 * of secrets at rest (callbacks themselves are queued by convo/events.c). Every function
 * returns new JSON (owned by the caller) or NULL with e filled; ids passed in must already
 * be valid ULIDs (the HTTP layer checks path ids). */
#ifndef PARLEY_CONVO_WEBHOOKS_H
#define PARLEY_CONVO_WEBHOOKS_H

#include "convo/convo.h"

#define CONVO_WEBHOOKS_MAX       5   /* per app, as Sinch */
#define CONVO_WEBHOOK_TARGET_MAX 742 /* characters, as Sinch */
#define CONVO_WEBHOOK_SECRET_MAX 256

/* WebhookTrigger values (sinch-wire.md 6.1), NULL-terminated; [0] is UNSPECIFIED_TRIGGER. */
extern const char *const convo_webhooks_triggers[];
/* Paths an update_mask may name, NULL-terminated. */
extern const char *const convo_webhooks_mask_paths[];

/* POST /webhooks: body is a Webhook (app_id, target and triggers required). */
json_t *convo_webhooks_create(const convo_ctx_t *cx, json_t *body, err_t *e);
json_t *convo_webhooks_get(const convo_ctx_t *cx, const char *webhook_id, err_t *e);
/* PATCH: the fields named by mask (every field present in body when mask->n == 0). */
json_t *convo_webhooks_update(const convo_ctx_t *cx, const char *webhook_id, json_t *body,
                              const convo_mask_t *mask, err_t *e);
/* Returns {} on success. */
json_t *convo_webhooks_delete(const convo_ctx_t *cx, const char *webhook_id, err_t *e);
/* {webhooks: [...]} of one app in id order; NOT_FOUND for an app outside the project. */
json_t *convo_webhooks_list(const convo_ctx_t *cx, const char *app_id, err_t *e);

#endif
