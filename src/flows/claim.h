/* claim.h: does a deployed flow take a project's inbound messages? The contact center asks
 * before it queues a new conversation ("unless a flow handles it", issue 6): a flow
 * handles an app's inbound messages when the project's deployed set has an enabled
 * `sinch-received-message` node bound to that app, or bound to no app (which takes every
 * app, like the default "Hello world!" flow). */
#ifndef PARLEY_FLOWS_CLAIM_H
#define PARLEY_FLOWS_CLAIM_H

#include "base/err.h"
#include "store/store.h"

/* 1 if a flow takes inbound messages of app_id, 0 if not (or on a store error, logged).
 * Any thread; uses the thread's connection of the flows store, so it may run inside the
 * caller's transaction on that store. Cached per project and deployed revision. */
int flows_claims_inbound(const char *project_id, const char *app_id);

/* Forget the cache (at shutdown). */
void flows_claim_cleanup(void);

/* The GDPR hook (contact_anonymize_fn): inside the anonymize transaction, remove what
 * Flows holds about contact_id: context entries keyed by it or holding it are deleted;
 * conversations waiting at "await response" and queued inbound messages are stripped of
 * the person (flows_retention_forget_contact). */
int flows_gdpr_anonymize(store_conn_t *c, const char *project_id, const char *contact_id, err_t *e);

#endif
