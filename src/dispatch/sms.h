/* sms.h: the SMS channel: one SMPP session (channels/smpp.h) per app SMS credential, kept
 * in step with the credentials, and the glue between sessions and the store. An SMS
 * credential is static_bearer {claimed_identity: the sender address, token: the SMSC},
 * where the SMSC is either a URL, smpp://SYSTEM_ID:PASSWORD@HOST:PORT?window=N&
 * throughput=R&system_type=T (configured by API), or the NAME of a [smsc.NAME] section of
 * parley.conf. The credential's state follows the bind: ACTIVE when bound, FAILING with
 * the SMSC's words when the bind is refused or the SMSC cannot be reached.
 *
 * Sends: the dispatcher hands a message's text to sms_submit with its outbox job id; when
 * the SMSC has answered every part the session thread records the outcome (sent with the
 * SMSC's message ids, or the next channel) exactly as the HTTP channels do. Inbound
 * deliver_sm and delivery receipts are stored before the SMSC gets its deliver_sm_resp. */
#ifndef PARLEY_DISPATCH_SMS_H
#define PARLEY_DISPATCH_SMS_H

#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

#include <jansson.h>

typedef struct sms sms_t;

/* Start sessions for every SMS credential in the store. */
sms_t *sms_start(store_t *store, const uint8_t seal_key[32], const config_t *cfg, err_t *e);
void sms_stop(sms_t *m);
/* Have a session for (app, credential ordinal) with these settings (credential: the
 * static_bearer object, borrowed); restarts it if the settings changed. */
int sms_ensure(sms_t *m, const char *project_id, const char *app_id, int ordinal,
               json_t *credential, err_t *e);
/* Queue text to `to` on the app's session; job_id comes back with the outcome.
 * RESOURCE_EXHAUSTED when the session's queue is full (retry later). */
int sms_submit(sms_t *m, const char *app_id, const char *to, const char *text, const char *job_id,
               err_t *e);

#endif
