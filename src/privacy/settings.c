/* settings.c: project settings (a Parley extension: contact retention, plus sections other
 * modules register, e.g. the contact center's retention) and tenant
 * deletion (soft delete now, purge by the "projects" sweep step after the grace period,
 * restore before that). */
#define _GNU_SOURCE
#include "privacy/privacy_internal.h"
#include "base/clock.h"
#include "base/jsonx.h"

#include <stdio.h>
#include <string.h>

static const char *const contact_types[] = {"PERSIST_RETENTION_POLICY", "CONTACT_EXPIRE_POLICY",
                                            NULL};

/* Sections other modules add (privacy_settings_register). */
#define SECTIONS_MAX 8
static struct {
    char key[48];
    privacy_settings_get_fn get;
    privacy_settings_patch_fn patch;
} sections[SECTIONS_MAX];
static int nsections;

void privacy_settings_register(const char *key, privacy_settings_get_fn get,
                               privacy_settings_patch_fn patch)
{
    int i = 0;
    while (i < nsections && strcmp(sections[i].key, key) != 0)
        i++;
    if (i == SECTIONS_MAX) return;
    if (i == nsections) nsections++;
    snprintf(sections[i].key, sizeof sections[i].key, "%s", key);
    sections[i].get = get;
    sections[i].patch = patch;
}

static int section_of(const char *key)
{
    for (int i = 0; i < nsections; i++)
        if (strcmp(sections[i].key, key) == 0) return i;
    return -1;
}

json_t *privacy_settings_get(store_conn_t *c, const char *project_id, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e,
        "SELECT contact_retention, contact_ttl_days FROM project_settings WHERE project_id = $1",
        "s", project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *pol = rc == 1
                      ? json_pack("{s:s, s:I}", "retention_type", store_col_text(st, 0), "ttl_days",
                                  (json_int_t)store_col_int(st, 1))
                      : json_pack("{s:s, s:i}", "retention_type", contact_types[0], "ttl_days", 0);
    store_done(st);
    if (rc < 0) {
        json_decref(pol);
        return NULL;
    }
    json_t *r = json_pack("{s:s, s:o}", "project_id", project_id, "contact_retention_policy", pol);
    for (int i = 0; i < nsections; i++) {
        json_t *v = sections[i].get(c, project_id, e);
        if (!v) {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, sections[i].key, v);
    }
    return r;
}

/* Write the validated contact retention (when has_contact) and every registered section
 * the body names, in one transaction; then answer the settings as GET does. */
static json_t *patch_sections(store_conn_t *c, const char *project_id, json_t *body,
                              const char *type, int64_t ttl, int has_contact, err_t *e)
{
    if (store_begin(c, e) < 0) return NULL;
    int rc = 0;
    if (has_contact &&
        store_exec(c, e,
                   "INSERT INTO project_settings (project_id, contact_retention, contact_ttl_days, "
                   "updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE SET "
                   "contact_retention = $2, contact_ttl_days = $3, updated_at = $4",
                   "ssii", project_id, type, ttl, clock_now_ms()) < 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < nsections; i++) {
        json_t *v = json_object_get(body, sections[i].key);
        if (v && sections[i].patch(c, project_id, v, e) < 0) rc = -1;
    }
    if (rc < 0 || store_commit(c, e) < 0) {
        store_rollback(c);
        return NULL;
    }
    return privacy_settings_get(c, project_id, e);
}

json_t *privacy_settings_patch(store_conn_t *c, const char *project_id, json_t *body, err_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "contact_retention_policy") != 0 && strcmp(key, "project_id") != 0 &&
            section_of(key) < 0) {
            buf_t names;
            buf_init(&names);
            buf_puts(&names, "contact_retention_policy");
            for (int i = 0; i < nsections; i++)
                buf_printf(&names, ", %s", sections[i].key);
            err_set(e, ERR_INVALID_ARGUMENT, "unknown field \"%.60s\": project settings have %s",
                    key, names.data);
            buf_free(&names);
            return NULL;
        }
    }
    json_t *o = json_object_get(body, "contact_retention_policy");
    if (!o) return patch_sections(c, project_id, body, NULL, 0, 0, e);
    if (!json_is_object(o)) {
        err_set(e, ERR_INVALID_ARGUMENT, "contact_retention_policy must be an object");
        return NULL;
    }
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "retention_type") != 0 && strcmp(key, "ttl_days") != 0) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "unknown field \"contact_retention_policy.%.60s\": expected retention_type "
                    "and ttl_days",
                    key);
            return NULL;
        }
    }
    int type = 0;
    int64_t ttl = 0;
    if (!json_object_get(o, "retention_type")) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "contact_retention_policy.retention_type is required "
                "(PERSIST_RETENTION_POLICY or CONTACT_EXPIRE_POLICY)");
        return NULL;
    }
    if (jsonx_enum(o, "retention_type", "contact_retention_policy.retention_type", contact_types,
                   &type, e) < 0)
        return NULL;
    if (type == 1) {
        if (!json_object_get(o, "ttl_days")) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "contact_retention_policy.ttl_days is required with CONTACT_EXPIRE_POLICY "
                    "(1..3650)");
            return NULL;
        }
        if (jsonx_int(o, "ttl_days", "contact_retention_policy.ttl_days", 1, 3650, &ttl, e) < 0)
            return NULL;
    } else if (json_object_get(o, "ttl_days") &&
               jsonx_int(o, "ttl_days", "contact_retention_policy.ttl_days", 0, 3650, &ttl, e) <
                   0) {
        return NULL;
    }
    return patch_sections(c, project_id, body, contact_types[type], ttl, 1, e);
}

int privacy_project_delete(store_conn_t *c, const char *project_id, int64_t now_ms, err_t *e)
{
    int64_t n =
        store_exec(c, e, "UPDATE projects SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                   "si", project_id, now_ms);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND, "project %s not found (or already deleted)", project_id);
    return 0;
}

int privacy_project_restore(store_conn_t *c, const char *project_id, err_t *e)
{
    int64_t n = store_exec(
        c, e, "UPDATE projects SET deleted_at = NULL WHERE id = $1 AND deleted_at IS NOT NULL", "s",
        project_id);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND,
                       "project %s is not deleted (or was already purged after its grace period)",
                       project_id);
    return 0;
}
