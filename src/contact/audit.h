/* audit.h: the GDPR audit log (tables contact_audit, contact_audit_state and
 * contact_anonymized in 008_contact_people.sql): one row per change of a contact's personal
 * data {id, time, actor, action, subject (contact id), attribute, new value}.
 *
 * Changes made through the Conversation API (and anything else that goes through convo:
 * the contact center's import, integrations, Flows) reach the log through the event
 * stream: the consumer "audit" diffs each CONTACT_* event against the last values it saw
 * (contact_audit_state) and writes one row per changed attribute, in the transaction
 * that advances its cursor; MESSAGE_INBOUND / MESSAGE_SUBMIT / MESSAGE_DELETE and
 * CONVERSATION_DELETE become `transcript` rows naming the message or conversation. Direct writers
 * (import/export, anonymize) call contact_audit_write in their own transaction. Values of an
 * anonymized contact are never written again: they read "[anonymized]". Returned JSON is owned by
 * the caller. */
#ifndef PARLEY_CONTACT_AUDIT_H
#define PARLEY_CONTACT_AUDIT_H

#include "base/err.h"
#include "store/store.h"
#include "stream/stream.h"

#include <jansson.h>
#include <stdint.h>

#define CONTACT_AUDIT_ANONYMIZED "[anonymized]"
#define CONTACT_AUDIT_DELETED    "[deleted]"

/* One row; actor NULL or "" means "system". */
int contact_audit_write(store_conn_t *c, const char *project_id, const char *actor,
                        const char *action, const char *subject, const char *attribute,
                        const char *new_value, err_t *e);

typedef struct {
    const char *subject, *actor, *attribute; /* exact matches; NULL = any */
    int64_t from_ms, to_ms;                  /* [from, to); 0 = unbounded */
    const char *page_size, *page_token;      /* as received */
} contact_audit_query_t;

/* {"entries": [{id, time, actor, action, subject, attribute, new_value}],
 *  "next_page_token"} newest first. */
json_t *contact_audit_search(store_conn_t *c, const char *project_id,
                             const contact_audit_query_t *q, err_t *e);

/* The stream handler behind the "audit" consumer (exposed for tests). */
int contact_audit_handle(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e);

/* Forget the snapshot of a contact and blank its past values in the log (anonymize). */
int contact_audit_redact(store_conn_t *c, const char *project_id, const char *contact_id,
                         const char *actor, err_t *e);

/* Start / stop the "audit" stream consumer thread (from cmd_serve). */
#define CONTACT_AUDIT_CONSUMER "audit" /* its stream cursor */
int contact_audit_start(store_t *s, err_t *e);
void contact_audit_stop(void);

#endif
