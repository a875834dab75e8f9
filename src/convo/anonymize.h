/* anonymize.h: finding and erasing one person's data in the Conversation API store, for
 * the contact center's GDPR tools (src/contact/gdpr.c). The contact center never reads
 * convo tables itself: these two functions are its way in.
 *
 * Anonymizing keeps every row (so counts, times, channels, statuses and categories stay
 * for statistics) and replaces what identifies the person: the contact's name, email,
 * external id and metadata, its channel identities (-> "anonymized-<contact>-<n>"), the
 * bodies and metadata of its messages and the metadata of its conversations, and the
 * same values inside stream events and undelivered callbacks that carry them. */
#ifndef PARLEY_CONVO_ANONYMIZE_H
#define PARLEY_CONVO_ANONYMIZE_H

#include "convo/convo.h"

#define CONVO_ANONYMIZED "[anonymized]"

typedef enum {
    CONVO_FIND_PHONE = 0, /* digits compared without + ( ) - . and spaces */
    CONVO_FIND_EMAIL,
    CONVO_FIND_NAME,
    CONVO_FIND_IDENTITY,
} convo_find_kind_t;

/* Every contact, conversation and message of cx's project holding value (case-insensitive
 * substring in names, emails, metadata and message bodies; exact or digit-equal for
 * identities): {"contacts": [{id, display_name, email, channel_identities}],
 * "conversations": [{id, app_id, contact_id}], "messages": [{id, conversation_id,
 * contact_id, direction, channel}], "truncated": bool} (at most 500 of each).
 * INVALID_ARGUMENT when value is shorter than 3 characters (or 5 digits for a phone). */
json_t *convo_person_find(const convo_ctx_t *cx, convo_find_kind_t kind, const char *value,
                          err_t *e);

/* Anonymize contact_id (see above) in one transaction (nested in the caller's if one is
 * open), queueing CONTACT_UPDATE with the placeholders. Returns {contact_id, identities,
 * conversations, messages, events} (counts of rows changed), NOT_FOUND for an unknown
 * contact. */
json_t *convo_contact_anonymize(const convo_ctx_t *cx, const char *contact_id, err_t *e);

#endif
