/* settings.c: project settings (a Parley extension: contact retention) and tenant
 * deletion (soft delete now, purge by the "projects" sweep step after the grace period,
 * restore before that). */
#define _GNU_SOURCE
#include "privacy/privacy_internal.h"
#include "base/clock.h"
#include "base/jsonx.h"

#include <string.h>

static const char *const contact_types[] = {"PERSIST_RETENTION_POLICY", "CONTACT_EXPIRE_POLICY",
                                            NULL};

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
    return json_pack("{s:s, s:o}", "project_id", project_id, "contact_retention_policy", pol);
}

json_t *privacy_settings_patch(store_conn_t *c, const char *project_id, json_t *body, err_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "contact_retention_policy") != 0 && strcmp(key, "project_id") != 0) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "unknown field \"%.60s\": project settings have contact_retention_policy", key);
            return NULL;
        }
    }
    json_t *o = json_object_get(body, "contact_retention_policy");
    if (!o) return privacy_settings_get(c, project_id, e);
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
    if (store_exec(c, e,
                   "INSERT INTO project_settings (project_id, contact_retention, contact_ttl_days, "
                   "updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE SET "
                   "contact_retention = $2, contact_ttl_days = $3, updated_at = $4",
                   "ssii", project_id, contact_types[type], ttl, clock_now_ms()) < 0)
        return NULL;
    return privacy_settings_get(c, project_id, e);
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
