/* apps.h: the Conversation API's apps: the apps table (display name, processing mode,
 * retention, the settings JSON) and app_credentials (one sealed channel credential per
 * row, position = channel priority). Owns create/get/list/update/delete in the Sinch v1
 * wire shape (AppResponse), with secrets masked, and the internal view channel adapters
 * use, with secrets unsealed. Every function returns new JSON owned by the caller, or
 * NULL (-1) with e filled. Apps of another project are NOT_FOUND. */
#ifndef PARLEY_CONVO_APPS_H
#define PARLEY_CONVO_APPS_H

#include "convo/convo.h"

/* Paths accepted in an update_mask (NULL-terminated). */
extern const char *const convo_app_mask_paths[];

/* POST /apps: body is an AppCreateRequest. */
json_t *convo_app_create(const convo_ctx_t *cx, json_t *body, err_t *e);
/* GET /apps/{id}: AppResponse, secrets masked. */
json_t *convo_app_get(const convo_ctx_t *cx, const char *app_id, err_t *e);
/* GET /apps: {apps: [AppResponse...]} in id order (not paged). */
json_t *convo_app_list(const convo_ctx_t *cx, err_t *e);
/* PATCH /apps/{id}: body is an AppUpdateRequest; mask->n == 0 updates every field present
 * in the body. channel_credentials, when updated, replaces the whole list. */
json_t *convo_app_update(const convo_ctx_t *cx, const char *app_id, json_t *body,
                         const convo_mask_t *mask, err_t *e);
/* DELETE /apps/{id}: removes the app, its credentials, webhooks, conversations and
 * messages. 0 or -1. */
int convo_app_delete(const convo_ctx_t *cx, const char *app_id, err_t *e);

/* For channel adapters and the messaging pipeline: the app in the AppResponse shape, but
 * with channel_credentials UNSEALED (full token, callback_secret) in priority order, and
 * callback_settings.secret_for_overridden_callback_urls in full. Never send this to a
 * client. NULL with NOT_FOUND for an unknown app, INTERNAL if a secret cannot be opened. */
json_t *convo_app_get_internal(const convo_ctx_t *cx, const char *app_id, err_t *e);

/* Record the result of checking a credential with its provider. status is PENDING,
 * ACTIVE or FAILING; description may be NULL (""). NOT_FOUND when the app (in cx's
 * project) has no credential (channel, ordinal). */
int convo_app_set_credential_state(const convo_ctx_t *cx, const char *app_id, const char *channel,
                                   int ordinal, const char *status, const char *description,
                                   err_t *e);

#endif
