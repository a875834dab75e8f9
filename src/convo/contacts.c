/* contacts.c: contacts and their channel identities (see contacts.h). A contact row holds
 * the profile fields; contact_identities holds one row per (channel, app, identity) with
 * its position in the contact's list, and its primary key is what makes an identity belong
 * to at most one contact. Every write validates the whole request first, then checks the
 * store (apps, identity owners) and writes inside one transaction, so a failed request
 * leaves nothing behind. */
#include "convo/contacts.h"
#include "convo/events.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/utf8.h"
#include "base/jsonx.h"
#include "base/sec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const convo_contact_languages[] = {
    "AF",    "SQ",    "AR",    "AZ",    "BN",    "BG", "CA", "ZH",          "ZH_CN",
    "ZH_HK", "ZH_TW", "HR",    "CS",    "DA",    "NL", "EN", "EN_GB",       "EN_US",
    "ET",    "FIL",   "FI",    "FR",    "DE",    "EL", "GU", "HA",          "HE",
    "HI",    "HU",    "ID",    "GA",    "IT",    "JA", "KN", "KK",          "KO",
    "LO",    "LV",    "LT",    "MK",    "MS",    "ML", "MR", "NB",          "FA",
    "PL",    "PT",    "PT_BR", "PT_PT", "PA",    "RO", "RU", "SR",          "SK",
    "SL",    "ES",    "ES_AR", "ES_ES", "ES_MX", "SW", "SV", "TA",          "TE",
    "TH",    "TR",    "UK",    "UR",    "UZ",    "VI", "ZU", "UNSPECIFIED", NULL};

#define CONTACT_COLS "id, display_name, email, external_id, language, metadata, channel_priority"

/* One validated channel identity; the strings point into the request body. */
typedef struct {
    convo_channel_t ch;
    const char *app_id; /* "" unless the channel is app-scoped; then points to app */
    char app[ULID_LEN + 1];
    const char *identity;
} ident_t;

/* What a create or update writes. A NULL string (or set_ids == 0) leaves the stored value
 * alone; the strings point into the request body. */
typedef struct {
    const char *display_name, *email, *external_id, *language, *metadata;
    char *priority; /* channel_priority as JSON text (malloc'd) */
    int set_ids;
    ident_t *ids; /* malloc'd */
    size_t nids;
} fields_t;

static void fields_free(fields_t *f)
{
    free(f->priority);
    free(f->ids);
}

/* Optional string capped at max characters: 0 absent (or null), 1 ok, -1 error. */
static int text_field(json_t *obj, const char *key, const char *name, size_t max, const char **out,
                      err_t *e)
{
    const char *s = NULL;
    int got = jsonx_str(obj, key, name, &s, e);
    if (got <= 0) return got;
    size_t n = utf8_len(s);
    if (n > max)
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s must be at most %zu characters, got %zu",
                       name, max, n);
    *out = s;
    return 1;
}

static int parse_language(const char *s, err_t *e)
{
    for (int i = 0; convo_contact_languages[i]; i++)
        if (strcmp(s, convo_contact_languages[i]) == 0) return i;
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "field language has unknown value \"%.40s\"; expected a ContactLanguage such as "
                   "EN, EN_US, SV, PT_BR or UNSPECIFIED",
                   s);
}

/* channel_identities: a non-empty array of {channel, identity, app_id?} without repeats. */
static int parse_identities(json_t *arr, ident_t **out, size_t *nout, err_t *e)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "field channel_identities must not be empty");
    if (n > CONVO_CONTACT_IDENTITIES_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field channel_identities has %zu entries; at most %d are allowed", n,
                       CONVO_CONTACT_IDENTITIES_MAX);
    ident_t *ids = xcalloc(n, sizeof *ids);
    char name[80];
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(arr, i);
        const char *chs = NULL, *identity = NULL, *app = NULL;
        if (!json_is_object(it)) {
            err_set(e, ERR_INVALID_ARGUMENT, "field channel_identities[%zu] must be an object", i);
            goto fail;
        }
        snprintf(name, sizeof name, "channel_identities[%zu].channel", i);
        if (jsonx_require(jsonx_str(it, "channel", name, &chs, e), name, e) < 0) goto fail;
        int ch = convo_channel_parse(chs, name, e);
        if (ch < 0) goto fail;
        snprintf(name, sizeof name, "channel_identities[%zu].identity", i);
        if (jsonx_require(text_field(it, "identity", name, CONVO_CONTACT_TEXT_MAX, &identity, e),
                          name, e) < 0)
            goto fail;
        if (!*identity) {
            err_set(e, ERR_INVALID_ARGUMENT, "field %s must not be empty", name);
            goto fail;
        }
        snprintf(name, sizeof name, "channel_identities[%zu].app_id", i);
        if (jsonx_str(it, "app_id", name, &app, e) < 0) goto fail;
        if (convo_channel_app_scoped((convo_channel_t)ch)) {
            if (!app || !*app) {
                err_set(e, ERR_INVALID_ARGUMENT,
                        "field %s is required for %s identities (they are scoped to an app)", name,
                        convo_channel_names[ch]);
                goto fail;
            }
            if (convo_norm_id(app, name, ids[i].app, e) < 0) goto fail;
            app = ids[i].app;
        } else {
            app = ""; /* project-wide channel: an app_id given is ignored */
        }
        ids[i].ch = (convo_channel_t)ch;
        ids[i].app_id = app;
        ids[i].identity = identity;
        for (size_t j = 0; j < i; j++)
            if (ids[j].ch == ids[i].ch && strcmp(ids[j].app_id, app) == 0 &&
                strcmp(ids[j].identity, identity) == 0) {
                err_set(
                    e, ERR_INVALID_ARGUMENT,
                    "field channel_identities[%zu] repeats channel_identities[%zu] (%s \"%.200s\")",
                    i, j, convo_channel_names[ch], identity);
                goto fail;
            }
    }
    *out = ids;
    *nout = n;
    return 0;
fail:
    free(ids);
    return -1;
}

/* channel_priority: supported channels, each at most once -> JSON text. */
static int parse_priority(json_t *arr, char **out, err_t *e)
{
    int seen[CONVO_CHANNEL_COUNT] = {0};
    char name[48];
    json_t *names = json_array();
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        snprintf(name, sizeof name, "channel_priority[%zu]", i);
        if (!json_is_string(v)) {
            json_decref(names);
            return err_set(e, ERR_INVALID_ARGUMENT, "field %s must be a string", name);
        }
        int ch = convo_channel_parse(json_string_value(v), name, e);
        if (ch < 0) {
            json_decref(names);
            return -1;
        }
        if (seen[ch]++) {
            json_decref(names);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "field channel_priority lists %s more than once",
                           convo_channel_names[ch]);
        }
        json_array_append_new(names, json_string(convo_channel_names[ch]));
    }
    *out = jsonx_dump(names);
    json_decref(names);
    return 0;
}

/* Is field `path` part of this write? Create (mask NULL): when the body has it. */
static int wants(const convo_mask_t *m, json_t *body, const char *path)
{
    return m ? convo_mask_wants(m, body, path) : json_object_get(body, path) != NULL;
}

/* A text field of the write: absent-but-wanted means its default "". */
static int want_text(const convo_mask_t *m, json_t *body, const char *key, size_t max,
                     const char **out, err_t *e)
{
    if (!wants(m, body, key)) return 0;
    *out = "";
    return text_field(body, key, key, max, out, e) < 0 ? -1 : 0;
}

/* Validate a create (mask NULL) or update body completely. */
static int parse_fields(json_t *body, const convo_mask_t *m, fields_t *f, err_t *e)
{
    int create = m == NULL;
    memset(f, 0, sizeof *f);
    if (want_text(m, body, "display_name", CONVO_CONTACT_TEXT_MAX, &f->display_name, e) < 0 ||
        want_text(m, body, "email", CONVO_CONTACT_TEXT_MAX, &f->email, e) < 0 ||
        want_text(m, body, "external_id", CONVO_CONTACT_TEXT_MAX, &f->external_id, e) < 0 ||
        want_text(m, body, "metadata", CONVO_CONTACT_METADATA_MAX, &f->metadata, e) < 0)
        return -1;
    if (f->email && *f->email && !strchr(f->email, '@'))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field email \"%.80s\" is not an email address (no '@')", f->email);
    if (create || wants(m, body, "language")) {
        const char *lang = NULL;
        int got = jsonx_str(body, "language", "language", &lang, e);
        if (got < 0) return -1;
        if (create && got == 0)
            return err_set(e, ERR_INVALID_ARGUMENT, "missing required field language");
        if (got && parse_language(lang, e) < 0) return -1;
        f->language = got ? lang : "UNSPECIFIED";
    }
    if (wants(m, body, "channel_priority")) {
        json_t *arr = NULL;
        if (jsonx_arr(body, "channel_priority", "channel_priority", &arr, e) < 0) return -1;
        json_t *empty = json_array();
        int rc = parse_priority(arr ? arr : empty, &f->priority, e);
        json_decref(empty);
        if (rc < 0) return -1;
    }
    if (create || wants(m, body, "channel_identities")) {
        json_t *arr = NULL;
        int got = jsonx_arr(body, "channel_identities", "channel_identities", &arr, e);
        if (got < 0) goto fail;
        if (got == 0) {
            if (create)
                err_set(e, ERR_INVALID_ARGUMENT, "missing required field channel_identities");
            else
                err_set(e, ERR_INVALID_ARGUMENT,
                        "field channel_identities must not be empty: a contact needs at least one "
                        "identity");
            goto fail;
        }
        if (parse_identities(arr, &f->ids, &f->nids, e) < 0) goto fail;
        f->set_ids = 1;
    }
    return 0;
fail:
    fields_free(f);
    memset(f, 0, sizeof *f);
    return -1;
}

/* The contact owning an identity: 1 (owner filled), 0 none, -1 store error. */
/* Phone numbers arrive with and without '+' (SMSCs, WhatsApp and RBM send digits only;
 * people write E.164): on phone channels both forms name the same identity. */
static void phone_alternate(convo_channel_t ch, const char *identity, char *alt, size_t cap)
{
    const char *digits = identity[0] == '+' ? identity + 1 : identity;
    int phone = (ch == CONVO_SMS || ch == CONVO_WHATSAPP || ch == CONVO_RCS) && *digits &&
                strspn(digits, "0123456789") == strlen(digits);
    if (!phone)
        snprintf(alt, cap, "%s", identity);
    else if (identity[0] == '+')
        snprintf(alt, cap, "%s", digits);
    else
        snprintf(alt, cap, "+%s", digits);
}

static int identity_lookup(const convo_ctx_t *cx, convo_channel_t ch, const char *app_id,
                           const char *identity, char owner[ULID_LEN + 1], err_t *e)
{
    store_stmt_t *st =
        store_query(cx->conn, e,
                    "SELECT contact_id FROM contact_identities WHERE project_id = "
                    "$1 AND channel = $2 AND app_id = $3 AND identity = $4",
                    "ssss", cx->project_id, convo_channel_names[ch], app_id, identity);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) snprintf(owner, ULID_LEN + 1, "%s", store_col_text(st, 0));
    store_done(st);
    return rc;
}

/* The contact owning identity, else (phone numbers) its form with or without '+': the exact
 * form first, as two point lookups (one IN with an ORDER BY needs a sorter each time). */
static int identity_owner(const convo_ctx_t *cx, convo_channel_t ch, const char *app_id,
                          const char *identity, char owner[ULID_LEN + 1], err_t *e)
{
    int rc = identity_lookup(cx, ch, app_id, identity, owner, e);
    if (rc != 0) return rc;
    char alt[CONVO_CONTACT_TEXT_MAX * 4 + 2];
    phone_alternate(ch, identity, alt, sizeof alt);
    return strcmp(alt, identity) == 0 ? 0 : identity_lookup(cx, ch, app_id, alt, owner, e);
}

/* Inside the write transaction: every app exists, and no identity belongs to a contact
 * other than self (NULL on create). */
static int check_identities(const convo_ctx_t *cx, const ident_t *ids, size_t n, const char *self,
                            err_t *e)
{
    for (size_t i = 0; i < n; i++) {
        if (*ids[i].app_id) {
            int rc = convo_exists(cx, CONVO_KIND_APP, ids[i].app_id, e);
            if (rc < 0) return -1;
            if (rc == 0)
                return err_set(e, ERR_NOT_FOUND,
                               "field channel_identities[%zu].app_id: app %s not found", i,
                               ids[i].app_id);
        }
        char owner[ULID_LEN + 1];
        int rc = identity_owner(cx, ids[i].ch, ids[i].app_id, ids[i].identity, owner, e);
        if (rc < 0) return -1;
        if (rc == 1 && (!self || strcmp(owner, self) != 0)) {
            if (*ids[i].app_id)
                return err_set(
                    e, ERR_ALREADY_EXISTS,
                    "channel_identities[%zu]: %s identity \"%.200s\" of app %s already belongs to "
                    "contact %s",
                    i, convo_channel_names[ids[i].ch], ids[i].identity, ids[i].app_id, owner);
            return err_set(
                e, ERR_ALREADY_EXISTS,
                "channel_identities[%zu]: %s identity \"%.200s\" already belongs to contact %s", i,
                convo_channel_names[ids[i].ch], ids[i].identity, owner);
        }
    }
    return 0;
}

static int insert_identities(const convo_ctx_t *cx, const char *contact_id, const ident_t *ids,
                             size_t n, err_t *e)
{
    for (size_t i = 0; i < n; i++)
        if (store_exec(cx->conn, e,
                       "INSERT INTO contact_identities (project_id, channel, app_id, identity, "
                       "contact_id, position) VALUES ($1, $2, $3, $4, $5, $6)",
                       "sssssi", cx->project_id, convo_channel_names[ids[i].ch], ids[i].app_id,
                       ids[i].identity, contact_id, (int64_t)i) < 0)
            return -1;
    return 0;
}

/* A Contact from a row of CONTACT_COLS, with an empty channel_identities to fill. */
static json_t *row_json(store_stmt_t *st)
{
    json_t *prio = json_loads(store_col_text(st, 6), 0, NULL);
    if (!json_is_array(prio)) {
        json_decref(prio);
        prio = json_array();
    }
    return json_pack("{s:s, s:[], s:o, s:s, s:s, s:s, s:s, s:s}", "id", store_col_text(st, 0),
                     "channel_identities", "channel_priority", prio, "display_name",
                     store_col_text(st, 1), "email", store_col_text(st, 2), "external_id",
                     store_col_text(st, 3), "language", store_col_text(st, 4), "metadata",
                     store_col_text(st, 5));
}

/* Append the contact's identities, in their stored order, to its channel_identities. */
static int fill_identities(const convo_ctx_t *cx, json_t *contact, err_t *e)
{
    json_t *arr = json_object_get(contact, "channel_identities");
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT channel, app_id, identity FROM contact_identities "
                                   "WHERE contact_id = $1 ORDER BY position",
                                   "s", json_string_value(json_object_get(contact, "id")));
    if (!st) return -1;
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        json_t *o = json_pack("{s:s, s:s}", "channel", store_col_text(st, 0), "identity",
                              store_col_text(st, 2));
        const char *app = store_col_text(st, 1);
        if (app && *app) json_object_set_new(o, "app_id", json_string(app));
        json_array_append_new(arr, o);
    }
    store_done(st);
    return rc;
}

json_t *convo_contact_get(const convo_ctx_t *cx, const char *id, err_t *e)
{
    char idbuf[ULID_LEN + 1];
    if (convo_norm_id(id, "contact_id", idbuf, e) < 0) return NULL;
    id = idbuf;
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT " CONTACT_COLS " FROM contacts WHERE id = $1 AND project_id = $2",
        "ss", id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *c = rc == 1 ? row_json(st) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "contact %s not found", id);
    if (c && fill_identities(cx, c, e) < 0) {
        json_decref(c);
        c = NULL;
    }
    return c;
}

static int insert_contact(const convo_ctx_t *cx, const char *id, const fields_t *f, int64_t now,
                          err_t *e)
{
    return store_exec(
               cx->conn, e,
               "INSERT INTO contacts (id, project_id, display_name, email, external_id, language, "
               "metadata, channel_priority, created_at, updated_at, last_activity) "
               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9)",
               "ssssssssi", id, cx->project_id, f->display_name ? f->display_name : "",
               f->email ? f->email : "", f->external_id ? f->external_id : "",
               f->language ? f->language : "UNSPECIFIED", f->metadata ? f->metadata : "",
               f->priority ? f->priority : "[]", now) < 0
               ? -1
               : 0;
}

/* Inside the caller's transaction: the contact as it now is, queued to webhooks under
 * trigger. Returns the contact (new reference) or NULL (NOT_FOUND if it is not there). */
static json_t *contact_notify(const convo_ctx_t *cx, const char *id, const char *trigger,
                              const char *key, err_t *e)
{
    json_t *c = convo_contact_get(cx, id, e);
    if (!c) return NULL;
    json_t *note = json_pack("{s:O}", "contact", c);
    int rc = convo_event_emit_project(cx, trigger, key, note, e);
    json_decref(note);
    if (rc < 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

json_t *convo_contact_create(const convo_ctx_t *cx, json_t *body, err_t *e)
{
    fields_t f;
    if (parse_fields(body, NULL, &f, e) < 0) return NULL;
    char id[ULID_LEN + 1];
    ulid_new(id);
    if (store_begin(cx->conn, e) < 0) goto fail;
    if (check_identities(cx, f.ids, f.nids, NULL, e) < 0 ||
        insert_contact(cx, id, &f, clock_now_ms(), e) < 0 ||
        insert_identities(cx, id, f.ids, f.nids, e) < 0) {
        store_rollback(cx->conn);
        goto fail;
    }
    json_t *c = contact_notify(cx, id, "CONTACT_CREATE", "contact_create_notification", e);
    if (!c || store_commit(cx->conn, e) < 0) {
        json_decref(c);
        store_rollback(cx->conn);
        goto fail;
    }
    fields_free(&f);
    return c;
fail:
    fields_free(&f);
    return NULL;
}

json_t *convo_contact_update(const convo_ctx_t *cx, const char *id, json_t *body,
                             const convo_mask_t *mask, err_t *e)
{
    static const convo_mask_t no_mask = {0};
    char idbuf[ULID_LEN + 1];
    if (convo_norm_id(id, "contact_id", idbuf, e) < 0) return NULL;
    id = idbuf;
    fields_t f;
    if (parse_fields(body, mask ? mask : &no_mask, &f, e) < 0) return NULL;
    if (store_begin(cx->conn, e) < 0) goto fail;
    int rc = convo_exists(cx, CONVO_KIND_CONTACT, id, e);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "contact %s not found", id);
    if (rc <= 0) goto rollback;
    if (f.set_ids) {
        if (check_identities(cx, f.ids, f.nids, id, e) < 0 ||
            store_exec(cx->conn, e, "DELETE FROM contact_identities WHERE contact_id = $1", "s",
                       id) < 0 ||
            insert_identities(cx, id, f.ids, f.nids, e) < 0)
            goto rollback;
    }
    if (store_exec(cx->conn, e,
                   "UPDATE contacts SET display_name = COALESCE($3, display_name), "
                   "email = COALESCE($4, email), external_id = COALESCE($5, external_id), "
                   "language = COALESCE($6, language), metadata = COALESCE($7, metadata), "
                   "channel_priority = COALESCE($8, channel_priority), updated_at = $9, "
                   "last_activity = $9 WHERE id = $1 AND project_id = $2",
                   "ssssssssi", id, cx->project_id, f.display_name, f.email, f.external_id,
                   f.language, f.metadata, f.priority, clock_now_ms()) < 0)
        goto rollback;
    json_t *c = contact_notify(cx, id, "CONTACT_UPDATE", "contact_update_notification", e);
    if (!c) goto rollback;
    if (store_commit(cx->conn, e) < 0) {
        json_decref(c);
        goto fail;
    }
    fields_free(&f);
    return c;
rollback:
    store_rollback(cx->conn);
fail:
    fields_free(&f);
    return NULL;
}

int convo_contact_delete(const convo_ctx_t *cx, const char *id, err_t *e)
{
    char idbuf[ULID_LEN + 1];
    if (convo_norm_id(id, "contact_id", idbuf, e) < 0) return -1;
    id = idbuf;
    if (store_begin(cx->conn, e) < 0) return -1;
    json_t *c = contact_notify(cx, id, "CONTACT_DELETE", "contact_delete_notification", e);
    if (!c ||
        store_exec(cx->conn, e, "DELETE FROM contacts WHERE id = $1 AND project_id = $2", "ss", id,
                   cx->project_id) < 0 ||
        store_commit(cx->conn, e) < 0) {
        json_decref(c);
        store_rollback(cx->conn);
        return -1;
    }
    json_decref(c);
    return 0;
}

/* ---- list ---- */

/* One WHERE clause per filter. The filtered ones select ids in a subquery that is bound
 * to the project and uses its index (contacts_external, the identities' primary key);
 * the outer query then fetches those ids by key. All take $1 project, $2 and $3. */
#define WHERE_ALL " FROM contacts WHERE project_id = $1 AND $2 IS NULL AND $3 IS NULL"
#define WHERE_EXTERNAL                                                                             \
    " FROM contacts WHERE id IN (SELECT id FROM contacts WHERE project_id = $1 AND "               \
    "external_id = $2) AND $3 IS NULL"
#define WHERE_IDENTITY                                                                             \
    " FROM contacts WHERE id IN (SELECT contact_id FROM contact_identities WHERE project_id = $1 " \
    "AND channel = $2 AND app_id = '' AND identity = $3)"
/* An app-scoped identity matches under any app of the project. */
#define WHERE_IDENTITY_SCOPED                                                                      \
    " FROM contacts WHERE id IN (SELECT contact_id FROM contact_identities WHERE project_id = $1 " \
    "AND channel = $2 AND identity = $3)"
#define PAGE_TAIL " AND id > $4 ORDER BY id LIMIT $5"

enum { LIST_ALL, LIST_EXTERNAL, LIST_IDENTITY, LIST_IDENTITY_SCOPED };
static const char *const list_count_sql[] = {
    "SELECT COUNT(*)" WHERE_ALL, "SELECT COUNT(*)" WHERE_EXTERNAL, "SELECT COUNT(*)" WHERE_IDENTITY,
    "SELECT COUNT(*)" WHERE_IDENTITY_SCOPED};
static const char *const list_page_sql[] = {"SELECT " CONTACT_COLS WHERE_ALL PAGE_TAIL,
                                            "SELECT " CONTACT_COLS WHERE_EXTERNAL PAGE_TAIL,
                                            "SELECT " CONTACT_COLS WHERE_IDENTITY PAGE_TAIL,
                                            "SELECT " CONTACT_COLS WHERE_IDENTITY_SCOPED PAGE_TAIL};

json_t *convo_contact_list(const convo_ctx_t *cx, const char *page_size, const char *page_token,
                           const char *external_id, const char *channel, const char *identity,
                           err_t *e)
{
    convo_page_t pg;
    if (convo_page_parse(page_size, page_token, 10, 1000, &pg, e) < 0) return NULL;
    if (external_id && !*external_id) external_id = NULL;
    if (channel && !*channel) channel = NULL;
    if (identity && !*identity) identity = NULL;
    if (!channel != !identity)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "query parameters channel and identity must be given together (got only %s)",
                       channel ? "channel" : "identity"),
               NULL;
    if (external_id && channel)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "query parameter external_id cannot be combined with channel and identity"),
               NULL;
    int kind = LIST_ALL;
    const char *a = NULL, *b = NULL;
    if (external_id) {
        kind = LIST_EXTERNAL;
        a = external_id;
    } else if (channel) {
        int ch = convo_channel_parse(channel, "channel", e);
        if (ch < 0) return NULL;
        kind = convo_channel_app_scoped((convo_channel_t)ch) ? LIST_IDENTITY_SCOPED : LIST_IDENTITY;
        a = convo_channel_names[ch];
        b = identity;
    }
    store_stmt_t *st = store_query(cx->conn, e, list_count_sql[kind], "sss", cx->project_id, a, b);
    if (!st) return NULL;
    int rc = store_step(st, e);
    int64_t total = rc == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    if (rc < 0) return NULL;
    st = store_query(cx->conn, e, list_page_sql[kind], "ssssi", cx->project_id, a, b, pg.after,
                     pg.size + 1);
    if (!st) return NULL;
    json_t *arr = json_array();
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, row_json(st));
    store_done(st);
    for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++)
        if (fill_identities(cx, json_array_get(arr, i), e) < 0) rc = -1;
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return convo_page_result(arr, "contacts", &pg, total, "id");
}

/* ---- merge ---- */

int convo_contact_priority(const convo_ctx_t *cx, const char *id, json_t **out, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT channel_priority FROM contacts WHERE id = $1 AND project_id = $2",
        "ss", id, cx->project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        *out = json_loads(store_col_text(st, 0), 0, NULL);
        if (!json_is_array(*out)) {
            json_decref(*out);
            *out = json_array();
        }
    }
    store_done(st);
    return rc;
}

static int priority_has(json_t *arr, const char *ch)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (strcmp(json_string_value(json_array_get(arr, i)), ch) == 0) return 1;
    return 0;
}

json_t *convo_contact_merge(const convo_ctx_t *cx, const char *destination_id, json_t *body,
                            err_t *e)
{
    json_t *deleted = NULL, *merged = NULL; /* for the CONTACT_MERGE callback */
    const char *src_in = NULL, *strategy = NULL;
    char dst[ULID_LEN + 1], src[ULID_LEN + 1];
    if (convo_norm_id(destination_id, "destination_id", dst, e) < 0 ||
        jsonx_require(jsonx_str(body, "source_id", "source_id", &src_in, e), "source_id", e) < 0 ||
        convo_norm_id(src_in, "source_id", src, e) < 0 ||
        jsonx_str(body, "strategy", "strategy", &strategy, e) < 0)
        return NULL;
    if (strategy && *strategy && strcmp(strategy, "MERGE") != 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field strategy must be MERGE (the only merge strategy), got \"%.40s\"",
                       strategy),
               NULL;
    if (strcmp(src, dst) == 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "field source_id must differ from the destination contact %s", dst),
               NULL;
    json_t *dprio = NULL, *sprio = NULL;
    char *prio = NULL;
    if (store_begin(cx->conn, e) < 0) return NULL;
    int rc = convo_contact_priority(cx, dst, &dprio, e);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "contact %s not found", dst);
    if (rc <= 0) goto fail;
    rc = convo_contact_priority(cx, src, &sprio, e);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "field source_id: contact %s not found", src);
    if (rc <= 0) goto fail;
    for (size_t i = 0; i < json_array_size(sprio); i++) {
        json_t *ch = json_array_get(sprio, i);
        if (!priority_has(dprio, json_string_value(ch))) json_array_append(dprio, ch);
    }
    prio = jsonx_dump(dprio);

    int64_t now = clock_now_ms();
    /* Only one active conversation per app and contact: where both have one, the
     * source's stops, then every conversation and message changes hands. */
    if (store_exec(cx->conn, e,
                   "UPDATE conversations SET active = 0, updated_at = $3 WHERE contact_id = $1 AND "
                   "project_id = $4 AND active = 1 AND app_id IN (SELECT app_id FROM conversations "
                   "WHERE contact_id = $2 AND active = 1)",
                   "ssis", src, dst, now, cx->project_id) < 0)
        goto fail;
    if (store_exec(
            cx->conn, e,
            "UPDATE conversations SET contact_id = $2 WHERE contact_id = $1 AND project_id = $3",
            "sss", src, dst, cx->project_id) < 0 ||
        store_exec(cx->conn, e,
                   "UPDATE messages SET contact_id = $2 WHERE contact_id = $1 AND project_id = $3",
                   "sss", src, dst, cx->project_id) < 0)
        goto fail;

    /* Identities follow the destination's own, in the source's order. */
    store_stmt_t *st = store_query(
        cx->conn, e,
        "SELECT COALESCE(MAX(position) + 1, 0) FROM contact_identities WHERE contact_id = $1", "s",
        dst);
    if (!st) goto fail;
    rc = store_step(st, e);
    int64_t base = rc == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    if (rc < 0) goto fail;
    if (store_exec(cx->conn, e,
                   "UPDATE contact_identities SET contact_id = $2, position = position + $3 WHERE "
                   "contact_id = $1",
                   "ssi", src, dst, base) < 0)
        goto fail;

        /* The destination keeps its own values and takes the source's where its own are empty. */
        // clang-format off
#define FROM_SOURCE(col) "(SELECT " col " FROM contacts WHERE id = $1)"
#define FILL(col, empty) col " = CASE WHEN " col " = " empty " THEN " FROM_SOURCE(col) " ELSE " col " END, "
    static const char fill_sql[] =
        "UPDATE contacts SET "
        FILL("display_name", "''") FILL("email", "''") FILL("external_id", "''")
        FILL("metadata", "''") FILL("language", "'UNSPECIFIED'")
        "channel_priority = $3, updated_at = $4, "
        "last_activity = CASE WHEN last_activity < " FROM_SOURCE("last_activity")
        " THEN " FROM_SOURCE("last_activity") " ELSE last_activity END "
        "WHERE id = $2";
#undef FILL
#undef FROM_SOURCE
    // clang-format on
    if (store_exec(cx->conn, e, fill_sql, "sssi", src, dst, prio, now) < 0) goto fail;
    deleted = convo_contact_get(cx, src, e);
    if (!deleted) goto fail;
    if (store_exec(cx->conn, e, "DELETE FROM contacts WHERE id = $1", "s", src) < 0) goto fail;
    merged = convo_contact_get(cx, dst, e);
    json_t *note =
        merged ? json_pack("{s:O, s:O}", "preserved_contact", merged, "deleted_contact", deleted)
               : NULL;
    rc = note ? convo_event_emit_project(cx, "CONTACT_MERGE", "contact_merge_notification", note, e)
              : -1;
    json_decref(note);
    if (rc < 0 || store_commit(cx->conn, e) < 0) goto fail;
    json_decref(deleted);
    json_decref(dprio);
    json_decref(sprio);
    free(prio);
    return merged;
fail:
    store_rollback(cx->conn);
    json_decref(deleted);
    json_decref(merged);
    json_decref(dprio);
    json_decref(sprio);
    free(prio);
    return NULL;
}

/* ---- identity conflicts ---- */

#define CONFLICT_TOKEN_PREFIX "ic1:"

json_t *convo_contact_identity_conflicts(const convo_ctx_t *cx, const char *page_size,
                                         const char *page_token, err_t *e)
{
    convo_page_t pg;
    if (convo_page_parse(page_size, NULL, 10, 1000, &pg, e) < 0) return NULL;
    char *raw = NULL;
    const char *after = "";
    if (page_token && *page_token) {
        size_t cap = strlen(page_token) + 4;
        raw = xmalloc(cap);
        int n = sec_b64url_decode(page_token, raw, cap - 1);
        if (n < (int)strlen(CONFLICT_TOKEN_PREFIX) || memcmp(raw, CONFLICT_TOKEN_PREFIX, 4) != 0 ||
            memchr(raw, '\0', (size_t)n)) {
            free(raw);
            return err_set(e, ERR_INVALID_ARGUMENT, "page_token is not one this server issued"),
                   NULL;
        }
        raw[n] = '\0';
        after = raw + 4;
    }
    store_stmt_t *st = store_query(
        cx->conn, e,
        "SELECT identity FROM contact_identities WHERE project_id = $1 AND identity > $2 "
        "GROUP BY identity HAVING COUNT(DISTINCT contact_id) > 1 ORDER BY identity LIMIT $3",
        "ssi", cx->project_id, after, pg.size + 1);
    json_t *idents = json_array();
    int rc = st ? 0 : -1;
    while (st && (rc = store_step(st, e)) == 1)
        json_array_append_new(idents, json_string(store_col_text(st, 0)));
    store_done(st);
    free(raw);
    json_t *conflicts = json_array();
    size_t n = json_array_size(idents);
    if ((int64_t)n > pg.size) n = (size_t)pg.size;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *identity = json_string_value(json_array_get(idents, i));
        st = store_query(
            cx->conn, e,
            "SELECT channel, contact_id FROM contact_identities WHERE project_id = $1 AND "
            "identity = $2 ORDER BY contact_id",
            "ss", cx->project_id, identity);
        if (!st) {
            rc = -1;
            break;
        }
        int seen[CONVO_CHANNEL_COUNT] = {0};
        json_t *ids = json_array();
        char last[ULID_LEN + 1] = "";
        while ((rc = store_step(st, e)) == 1) {
            const char *ch = store_col_text(st, 0), *cid = store_col_text(st, 1);
            for (int c = 0; c < CONVO_CHANNEL_COUNT; c++)
                if (strcmp(ch, convo_channel_names[c]) == 0) seen[c] = 1;
            if (strcmp(cid, last) != 0) {
                json_array_append_new(ids, json_string(cid));
                snprintf(last, sizeof last, "%s", cid);
            }
        }
        store_done(st);
        json_t *chans = json_array();
        for (int c = 0; c < CONVO_CHANNEL_COUNT; c++)
            if (seen[c]) json_array_append_new(chans, json_string(convo_channel_names[c]));
        json_array_append_new(conflicts, json_pack("{s:s, s:o, s:o}", "identity", identity,
                                                   "channels", chans, "contact_ids", ids));
    }
    if (rc < 0) {
        json_decref(idents);
        json_decref(conflicts);
        return NULL;
    }
    char *token = xstrdup("");
    if (json_array_size(idents) > n && n > 0) {
        buf_t b;
        buf_init(&b);
        buf_printf(&b, CONFLICT_TOKEN_PREFIX "%s",
                   json_string_value(json_array_get(idents, n - 1)));
        size_t cap = b.len * 4 / 3 + 4;
        free(token);
        token = xmalloc(cap);
        sec_b64url_encode(b.data, b.len, token, cap);
        buf_free(&b);
    }
    json_decref(idents);
    json_t *out = json_pack("{s:o, s:s}", "conflicts", conflicts, "next_page_token", token);
    free(token);
    return out;
}

/* ---- for the messaging pipeline ---- */

int convo_contact_resolve(const convo_ctx_t *cx, convo_channel_t ch, const char *app_id,
                          const char *identity, const char *display_name, int create,
                          char contact_id[ULID_LEN + 1], int *created, err_t *e)
{
    if (created) *created = 0;
    if ((int)ch < 0 || ch >= CONVO_CHANNEL_COUNT)
        return err_set(e, ERR_INVALID_ARGUMENT, "unknown channel %d", (int)ch);
    if (!identity || !*identity)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s identity must not be empty",
                       convo_channel_names[ch]);
    if (utf8_len(identity) > CONVO_CONTACT_TEXT_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s identity must be at most %d characters",
                       convo_channel_names[ch], CONVO_CONTACT_TEXT_MAX);
    const char *app = "";
    char appbuf[ULID_LEN + 1];
    if (convo_channel_app_scoped(ch)) {
        if (!app_id || !*app_id)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "app_id is required for %s identities (they are scoped to an app)",
                           convo_channel_names[ch]);
        if (convo_norm_id(app_id, "app_id", appbuf, e) < 0) return -1;
        app = appbuf;
    }
    int rc = identity_owner(cx, ch, app, identity, contact_id, e);
    if (rc < 0) return -1;
    if (rc == 1) return 0;
    if (!create)
        return err_set(e, ERR_NOT_FOUND, "no contact has the %s identity \"%.200s\"",
                       convo_channel_names[ch], identity);
    if (*app) {
        rc = convo_exists(cx, CONVO_KIND_APP, app, e);
        if (rc < 0) return -1;
        if (rc == 0) return err_set(e, ERR_NOT_FOUND, "app %s not found", app);
    }
    ident_t id = {.ch = ch, .app_id = app, .identity = identity};
    fields_t f = {.language = "UNSPECIFIED", .display_name = display_name};
    char newid[ULID_LEN + 1];
    ulid_new(newid);
    if (insert_contact(cx, newid, &f, clock_now_ms(), e) < 0 ||
        insert_identities(cx, newid, &id, 1, e) < 0)
        return -1;
    json_t *c = contact_notify(cx, newid, "CONTACT_CREATE", "contact_create_notification", e);
    if (!c) return -1;
    json_decref(c);
    memcpy(contact_id, newid, ULID_LEN + 1);
    if (created) *created = 1;
    return 0;
}

int convo_contact_touch(const convo_ctx_t *cx, const char *id, int64_t ms, err_t *e)
{
    char idbuf[ULID_LEN + 1];
    if (convo_norm_id(id, "contact_id", idbuf, e) < 0) return -1;
    id = idbuf;
    int64_t n = store_exec(
        cx->conn, e, "UPDATE contacts SET last_activity = $3 WHERE id = $1 AND project_id = $2",
        "ssi", id, cx->project_id, ms);
    if (n < 0) return -1;
    if (n == 0) return err_set(e, ERR_NOT_FOUND, "contact %s not found", id);
    return 0;
}
