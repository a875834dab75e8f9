/* retention.h: the contact center's retention (issue #7, item 3), per project.
 *
 * Policy (table contact_retention_settings; no row = the defaults below):
 *   - a closed contact-center conversation is anonymized anonymize_after_days after it
 *     closed: its notes' text and its wrap-up become "[anonymized]", its contact id and
 *     Conversation API conversation id become "[anonymized]" (contact_id stays "" when it
 *     was ""); the row, times, category, channel, app, priority, agent and closed_by stay,
 *     so statistics do not change;
 *   - it is deleted (with its notes) delete_after_days after it closed;
 *   - the real-time events (contact_events) older than anonymize_after_days are reduced to
 *     {"anonymized":true,"conversation_id"?} (stats events keep their counts), and those
 *     older than delete_after_days are deleted;
 *   - GDPR audit log entries (contact_audit) are deleted audit_keep_days after they were
 *     written;
 *   - waiting and active conversations are never touched (the clock starts at close), nor
 *     are user accounts, agents, skills, categories and rules (kept until deleted).
 *
 * The four functions below are privacy sweep steps (privacy.h privacy_sweep_fn: at most
 * `limit` items per call, one transaction, policy re-read on every call, age judged
 * against now_ms); main.c registers them with privacy_sweep_register, and the settings
 * pair with privacy_settings_register under "contact_center_retention". Returned JSON is
 * owned by the caller. */
#ifndef PARLEY_CONTACT_RETENTION_H
#define PARLEY_CONTACT_RETENTION_H

#include "base/err.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

#define CONTACT_RETENTION_ANONYMIZE_DAYS 90
#define CONTACT_RETENTION_DELETE_DAYS    365
#define CONTACT_RETENTION_AUDIT_DAYS     365
#define CONTACT_RETENTION_MAX_DAYS       3650
#define CONTACT_RETENTION_PLACEHOLDER    "[anonymized]"

/* "contact_center_anonymize": closed conversations past anonymize_after_days. Returns
 * conversations anonymized. */
int64_t contact_retention_anonymize(store_conn_t *c, int64_t now_ms, int limit, err_t *e);
/* "contact_center_delete": closed conversations past delete_after_days, with their notes.
 * Returns conversations deleted. */
int64_t contact_retention_delete(store_conn_t *c, int64_t now_ms, int limit, err_t *e);
/* "contact_center_events": events reduced or deleted (rows changed). */
int64_t contact_retention_events(store_conn_t *c, int64_t now_ms, int limit, err_t *e);
/* "contact_audit": audit log entries deleted. */
int64_t contact_retention_audit(store_conn_t *c, int64_t now_ms, int limit, err_t *e);

/* The settings section: {anonymize_after_days, delete_after_days, audit_keep_days}. */
json_t *contact_retention_settings_get(store_conn_t *c, const char *project_id, err_t *e);
/* A partial object merged over the current values; each 1..3650 and anonymize_after_days
 * <= delete_after_days; INVALID_ARGUMENT naming the field otherwise (nothing written). */
int contact_retention_settings_patch(store_conn_t *c, const char *project_id, json_t *value,
                                     err_t *e);

#endif
