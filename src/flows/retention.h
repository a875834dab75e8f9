/* retention.h: Flows' retention (issue #7, item 4), fixed periods:
 *   - conversation payloads Flows holds in the store: waiting conversations (flows_waits,
 *     a sinch-send node's "await response") and accepted but not yet taken conversation
 *     events (flows_inbox) are anonymized FLOWS_RETENTION_ANONYMIZE_DAYS after they were
 *     written: every contact id, conversation id and channel identity is removed from the
 *     saved msg (keys contactId, conversationId, channelIdentity, channelIdentities,
 *     identity, in camelCase or snake_case, at any depth) and the msg gets
 *     "_anonymized": true; a wait's contact_id becomes "[anonymized]:<wait id>" (so the
 *     contact's next message no longer resumes it) and its conversation_id "";
 *   - those rows, and the handover markers (flows_handovers: conversations a
 *     contact-handover node passed to the contact center), are deleted
 *     FLOWS_RETENTION_DELETE_DAYS after they were written;
 *   - debug and execution logs: the debug sidebar is a ring of the last 1000 entries per
 *     project in memory only (src/flows/debug.c), never persisted, gone at restart;
 *     runtime errors go to the server log (stderr), whose retention is the operator's.
 *     Nothing in the store to sweep. Context entries (flows_context) have no time rule:
 *     they are the flow author's state, kept until the flow changes them.
 *
 * Both functions are privacy sweep steps (privacy.h privacy_sweep_fn), registered by
 * main.c as "flows_anonymize" and "flows_delete". */
#ifndef PARLEY_FLOWS_RETENTION_H
#define PARLEY_FLOWS_RETENTION_H

#include "base/err.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

#define FLOWS_RETENTION_ANONYMIZE_DAYS 30
#define FLOWS_RETENTION_DELETE_DAYS    365
#define FLOWS_RETENTION_LOG_DAYS       30 /* debug ring: memory only, see above */

/* Waits and inbox rows anonymized (rows). */
int64_t flows_retention_anonymize(store_conn_t *c, int64_t now_ms, int limit, err_t *e);
/* Waits, inbox rows and handovers deleted (rows). */
int64_t flows_retention_delete(store_conn_t *c, int64_t now_ms, int limit, err_t *e);

/* The DPO's anonymize hook (contact/gdpr.h contact_anonymize_fn, registered by main.c):
 * the waits of that contact and the pending conversation events naming it are anonymized
 * at once, as above, inside the anonymize transaction. 0 or -1 with e filled. */
int flows_retention_forget_contact(store_conn_t *c, const char *project_id, const char *contact_id,
                                   err_t *e);

/* Remove contact and conversation ids and channel identities from msg, at any depth, in
 * place. Returns how many keys went. */
int flows_retention_strip(json_t *msg);

#endif
