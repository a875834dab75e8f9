/* gdpr.h: the data protection officer's tools over the whole of Parley: search every
 * record holding a phone, email, name or identity; anonymize one person everywhere; and
 * the contacts' CSV import/export (csv.c). Conversation API data is reached only through
 * src/convo/anonymize.h and the convo contact functions; other modules that keep personal
 * data about a contact (routing's notes, Flows' context) register an anonymize hook.
 * Returned JSON is owned by the caller. */
#ifndef PARLEY_CONTACT_GDPR_H
#define PARLEY_CONTACT_GDPR_H

#include "base/buf.h"
#include "convo/convo.h"

#include <jansson.h>

/* A module's part of anonymizing contact_id: replace the personal data it keeps about that
 * contact (keep rows and statistics). Runs inside the anonymize transaction; -1 with e
 * filled rolls everything back. */
typedef int (*contact_anonymize_fn)(store_conn_t *c, const char *project_id, const char *contact_id,
                                    err_t *e);
/* Register at start-up, before the server serves (not thread-safe); up to 16 hooks. */
void contact_anonymize_register(contact_anonymize_fn fn);

/* field: "phone" | "email" | "name" | "identity". See convo_person_find. */
json_t *contact_gdpr_search(const convo_ctx_t *cx, const char *field, const char *value, err_t *e);
/* Anonymize contact_id everywhere (convo, hooks, the audit log's past values) and log it
 * (actor cx->actor) in one transaction. Returns convo_contact_anonymize's counts. */
json_t *contact_gdpr_anonymize(const convo_ctx_t *cx, const char *contact_id, err_t *e);

/* ---- CSV (csv.c) ---- */

/* An RFC 4180 table: rows[r][f] (strings owned by the table), line[r] = the source line
 * number where row r starts (1-based). */
typedef struct {
    size_t nrows;
    size_t *nfields;
    char ***rows;
    int *line;
} contact_csv_t;

/* Quoted fields ("" for a quote; newlines allowed inside quotes), CRLF or LF line ends, a
 * trailing newline optional, blank lines skipped. INVALID_ARGUMENT naming the line for
 * an unterminated quote or text after a closing quote. */
int contact_csv_parse(const char *text, size_t len, contact_csv_t *out, err_t *e);
void contact_csv_free(contact_csv_t *t);
/* Append one field, quoted when it holds , " CR or LF (or starts with a space). */
void contact_csv_field(buf_t *b, const char *v);
/* "SMS:+4670;MESSENGER@APPID:123" -> [{channel, identity, app_id?}]; ';' and '\' inside an
 * identity are escaped with '\'. */
json_t *contact_csv_identities(const char *s, err_t *e);

#define CONTACT_CSV_COLUMNS "id,display_name,email,external_id,language,metadata,channel_identities"

/* Every contact of the project as CSV (header CONTACT_CSV_COLUMNS) into out; each exported
 * contact gets an audit row. Returns the number of contacts or -1. */
int64_t contact_csv_export(const convo_ctx_t *cx, buf_t *out, err_t *e);
/* Import: the header names the columns (any order, a subset of CONTACT_CSV_COLUMNS); a row
 * with an id updates that contact (the columns present, an empty cell clears), a row
 * without creates one. All rows or none: on any error returns NULL with e filled and
 * *details = [{row, line, column?, message}] for every bad row (new reference). Success:
 * {created, updated, contacts: [ids]}, audit-logged. */
json_t *contact_csv_import(const convo_ctx_t *cx, const char *text, size_t len, json_t **details,
                           err_t *e);

#endif
