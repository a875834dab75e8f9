/* contacts.h: the Conversation API's contacts. Owns the tables contacts and
 * contact_identities: creating, reading, listing, updating, deleting and merging
 * contacts, the identity-conflict report, and the lookup the messaging pipeline uses to
 * turn a (channel, app, identity) into a contact (creating one for unknown recipients and
 * inbound senders, as Sinch does).
 *
 * Identities are unique per project, channel and identity; for the app-scoped channels
 * (MESSENGER, INSTAGRAM, VIBERBM) also per app (contact_identities.app_id is '' for the
 * others). Every function returns new JSON owned by the caller, or NULL / -1 with e
 * filled (INVALID_ARGUMENT naming the field, NOT_FOUND naming the contact, ALREADY_EXISTS
 * naming the identity and its owner). */
#ifndef PARLEY_CONVO_CONTACTS_H
#define PARLEY_CONVO_CONTACTS_H

#include "convo/convo.h"

#include <stdint.h>

/* Limits (characters, not bytes). */
#define CONVO_CONTACT_TEXT_MAX       256  /* display_name, email, external_id, identity */
#define CONVO_CONTACT_METADATA_MAX   1024 /* metadata */
#define CONVO_CONTACT_IDENTITIES_MAX 100  /* channel_identities per contact */

/* ContactLanguage values, NULL-terminated ("AF", ..., "UNSPECIFIED"). */
extern const char *const convo_contact_languages[];

/* POST /contacts: body is a ContactCreateRequest (channel_identities and language
 * required). Writes the contact and its identities in one transaction. */
json_t *convo_contact_create(const convo_ctx_t *cx, json_t *body, err_t *e);
/* The Contact, or NULL with NOT_FOUND (also for another project's contact) or
 * INVALID_ARGUMENT when id is not a ULID. Usable by any module. */
json_t *convo_contact_get(const convo_ctx_t *cx, const char *id, err_t *e);
/* GET /contacts: query values as received (NULL when absent). Answers
 * {contacts, next_page_token, total_size}. channel and identity go together;
 * external_id cannot be combined with them. */
json_t *convo_contact_list(const convo_ctx_t *cx, const char *page_size, const char *page_token,
                           const char *external_id, const char *channel, const char *identity,
                           err_t *e);
/* PATCH /contacts/{id}: with mask->n == 0, every field present in body is updated;
 * otherwise exactly the listed paths (an absent listed field is cleared). */
json_t *convo_contact_update(const convo_ctx_t *cx, const char *id, json_t *body,
                             const convo_mask_t *mask, err_t *e);
/* DELETE /contacts/{id}: identities, conversations and messages go with it. */
int convo_contact_delete(const convo_ctx_t *cx, const char *id, err_t *e);
/* POST /contacts/{destination_id}:merge with body {source_id, strategy?: "MERGE"}. Moves
 * the source's identities, conversations and messages to the destination, fills the
 * destination's empty fields from the source, deletes the source (one transaction), and
 * returns the destination. */
json_t *convo_contact_merge(const convo_ctx_t *cx, const char *destination_id, json_t *body,
                            err_t *e);
/* GET /contacts:identityConflicts: identities held by more than one contact, in identity
 * order: {conflicts: [{identity, channels, contact_ids}], next_page_token}. */
json_t *convo_contact_identity_conflicts(const convo_ctx_t *cx, const char *page_size,
                                         const char *page_token, err_t *e);

/* For the messaging pipeline: the contact owning (ch, app_id if ch is app-scoped,
 * identity). If none and create != 0, creates a contact with that one identity (language
 * UNSPECIFIED, display_name or none), queues CONTACT_CREATE, and sets *created = 1
 * (created may be NULL). Runs inside
 * the caller's transaction (it never begins or commits one); NOT_FOUND when absent and
 * create == 0; INVALID_ARGUMENT for an empty or overlong identity or a missing app_id on
 * an app-scoped channel; NOT_FOUND when that app is not in the project. */
int convo_contact_resolve(const convo_ctx_t *cx, convo_channel_t ch, const char *app_id,
                          const char *identity, const char *display_name, int create,
                          char contact_id[ULID_LEN + 1], int *created, err_t *e);
/* Set the contact's last_activity to ms. NOT_FOUND when the contact is not in the project. */
int convo_contact_touch(const convo_ctx_t *cx, const char *id, int64_t ms, err_t *e);

/* A contact's channel_priority as a JSON array (new reference in *out): 1 found, 0 not in
 * the project, -1 error. */
int convo_contact_priority(const convo_ctx_t *cx, const char *id, json_t **out, err_t *e);

#endif
