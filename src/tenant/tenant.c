/* tenant.c: projects, access keys and users on top of store.h. */
#include "tenant/tenant.h"
#include "base/clock.h"
#include "base/sec.h"
#include "base/tcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int (*tenant_project_hook)(store_conn_t *c, const char *project_id, err_t *e);

int tenant_project_create(store_conn_t *c, const char *name, char id[ULID_LEN + 1], err_t *e)
{
    if (!name || !*name || strlen(name) > 200)
        return err_set(e, ERR_INVALID_ARGUMENT, "project name must be 1..200 characters");
    ulid_new(id);
    if (store_begin(c, e) < 0) return -1;
    if (store_exec(c, e, "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)", "ssi",
                   id, name, clock_now_ms()) < 0 ||
        (tenant_project_hook && tenant_project_hook(c, id, e) < 0) || store_commit(c, e) < 0) {
        store_rollback(c);
        return -1;
    }
    return 0;
}

int tenant_project_exists(store_conn_t *c, const char *project_id, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT 1 FROM projects WHERE id = $1 AND deleted_at IS NULL", "s", project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    store_done(st);
    return rc;
}

static json_t *time_json(int64_t ms)
{
    char ts[40];
    clock_format_rfc3339(ms, ts, sizeof ts);
    return json_string(ts);
}

json_t *tenant_project_list(store_conn_t *c, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT id, name, created_at FROM projects WHERE deleted_at IS NULL ORDER BY id", "");
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "id", store_col_text(st, 0), "name",
                                             store_col_text(st, 1), "created_at",
                                             time_json(store_col_int(st, 2))));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static void secret_hash(const char *secret, uint8_t out[SEC_HASH_LEN])
{
    sec_hash(NULL, secret, strlen(secret), out);
}

int tenant_key_create(store_conn_t *c, const char *project_id, const char *name,
                      char key_id[ULID_LEN + 1], char secret[TENANT_SECRET_MAX], err_t *e)
{
    int exists = tenant_project_exists(c, project_id, e);
    if (exists < 0) return -1;
    if (!exists) return err_set(e, ERR_NOT_FOUND, "project %s not found", project_id);
    if (name && strlen(name) > 200) return err_set(e, ERR_INVALID_ARGUMENT, "key name too long");
    uint8_t h[SEC_HASH_LEN];
    ulid_new(key_id);
    sec_random_token(32, secret, TENANT_SECRET_MAX);
    secret_hash(secret, h);
    return store_exec(c, e,
                      "INSERT INTO access_keys (id, project_id, name, secret_hash, created_at) "
                      "VALUES ($1, $2, $3, $4, $5)",
                      "sssbi", key_id, project_id, name ? name : "", h, sizeof h,
                      clock_now_ms()) < 0
               ? -1
               : 0;
}

int tenant_key_revoke(store_conn_t *c, const char *project_id, const char *key_id, err_t *e)
{
    int64_t n =
        store_exec(c, e,
                   "UPDATE access_keys SET revoked_at = $1 WHERE id = $2 AND project_id = $3 "
                   "AND revoked_at IS NULL",
                   "iss", clock_now_ms(), key_id, project_id);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND, "active key %s not found in project %s", key_id,
                       project_id);
    return 0;
}

json_t *tenant_key_list(store_conn_t *c, const char *project_id, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, name, created_at, revoked_at FROM access_keys "
                                   "WHERE project_id = $1 ORDER BY id",
                                   "s", project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        json_t *k = json_pack("{s:s, s:s, s:o}", "key_id", store_col_text(st, 0), "name",
                              store_col_text(st, 1), "created_at", time_json(store_col_int(st, 2)));
        json_object_set_new(k, "revoked_at",
                            store_col_is_null(st, 3) ? json_null()
                                                     : time_json(store_col_int(st, 3)));
        json_array_append_new(arr, k);
    }
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static const char key_lookup_sql[] =
    "SELECT k.project_id, k.secret_hash FROM access_keys k JOIN projects p ON p.id = k.project_id "
    "WHERE k.id = $1 AND k.revoked_at IS NULL AND p.deleted_at IS NULL";

/* Active keys by id: project id and secret hash, valid while the configuration generation
 * is unchanged (a revocation, by the server or the CLI, advances it). Only found keys are
 * cached: an unknown or wrong key costs its lookup every time. */
typedef struct {
    char project_id[ULID_LEN + 1];
    uint8_t hash[SEC_HASH_LEN];
} key_entry_t;
static tcache_t *key_cache;
static pthread_once_t key_cache_once = PTHREAD_ONCE_INIT;
static void key_cache_init(void)
{
    key_cache = tcache_new(1024);
}

/* The key's project and secret hash: 1 found (active, project not deleted), 0 not, -1 error. */
static int key_lookup(store_conn_t *c, const char *key_id, key_entry_t *k, err_t *e)
{
    pthread_once(&key_cache_once, key_cache_init);
    uint64_t token;
    if (store_config_gen(c, &token, e) < 0) return -1;
    if (tcache_get(key_cache, key_id, token, k, sizeof *k) == (int)sizeof *k) return 1;
    store_stmt_t *st = store_query(c, e, key_lookup_sql, "s", key_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        size_t len;
        const void *have = store_col_blob(st, 1, &len);
        const char *pid = store_col_text(st, 0);
        if (len != SEC_HASH_LEN || !pid || strlen(pid) != ULID_LEN) {
            rc = 0; /* not a key this server issued: never matches */
        } else {
            memset(k, 0, sizeof *k);
            memcpy(k->hash, have, SEC_HASH_LEN);
            memcpy(k->project_id, pid, ULID_LEN);
            tcache_put(key_cache, key_id, token, k, sizeof *k);
        }
    }
    store_done(st);
    return rc;
}

int tenant_key_verify(store_conn_t *c, const char *key_id, const char *secret,
                      char project_id[ULID_LEN + 1], err_t *e)
{
    uint8_t want[SEC_HASH_LEN];
    key_entry_t k;
    secret_hash(secret, want);
    int rc = key_lookup(c, key_id, &k, e);
    if (rc < 0) return -1;
    if (rc == 0 || !sec_equal(k.hash, want, sizeof want))
        return err_set(e, ERR_UNAUTHENTICATED, "invalid or revoked access key");
    memcpy(project_id, k.project_id, ULID_LEN + 1);
    return 0;
}

int tenant_key_active(store_conn_t *c, const char *key_id, char project_id[ULID_LEN + 1], err_t *e)
{
    key_entry_t k;
    int rc = key_lookup(c, key_id, &k, e);
    if (rc < 0) return -1;
    if (rc == 0) return err_set(e, ERR_UNAUTHENTICATED, "access key revoked or unknown");
    memcpy(project_id, k.project_id, ULID_LEN + 1);
    return 0;
}

static const char *const tenant_roles[] = {"admin", "supervisor", "agent", "dpo", NULL};

int tenant_user_create(store_conn_t *c, const char *project_id, const char *email,
                       const char *password, const char *role, char id[ULID_LEN + 1], err_t *e)
{
    int known = 0;
    for (int i = 0; tenant_roles[i]; i++)
        known |= strcmp(role, tenant_roles[i]) == 0;
    if (!known) return err_set(e, ERR_INVALID_ARGUMENT, "unknown role \"%s\"", role);
    if (!strchr(email, '@') || strlen(email) > 120)
        return err_set(e, ERR_INVALID_ARGUMENT, "email \"%s\" is not an address", email);
    char hash[256];
    if (sec_password_hash(password, hash, sizeof hash) < 0)
        return err_set(e, ERR_INTERNAL, "password hashing failed (out of memory?)");
    ulid_new(id);
    return store_exec(c, e,
                      "INSERT INTO users (id, project_id, email, password_hash, role, created_at) "
                      "VALUES ($1, $2, $3, $4, $5, $6)",
                      "sssssi", id, project_id, email, hash, role, clock_now_ms()) < 0
               ? -1
               : 0;
}

int tenant_init(store_conn_t *c, tenant_init_t *out, err_t *e)
{
    if (store_begin(c, e) < 0) return -1;
    store_stmt_t *st = store_query(c, e, "SELECT 1 FROM projects LIMIT 1", "");
    int rc = st ? store_step(st, e) : -1;
    store_done(st);
    if (rc != 0) {
        store_rollback(c);
        return rc < 0 ? -1 : 0;
    }
    char user_id[ULID_LEN + 1];
    memset(out, 0, sizeof *out);
    snprintf(out->admin_email, sizeof out->admin_email, "admin@parley.local");
    sec_random_token(18, out->admin_password, sizeof out->admin_password);
    if (tenant_project_create(c, "Default project", out->project_id, e) < 0 ||
        tenant_key_create(c, out->project_id, "initial key", out->key_id, out->key_secret, e) < 0 ||
        tenant_user_create(c, out->project_id, out->admin_email, out->admin_password, "admin",
                           user_id, e) < 0 ||
        store_commit(c, e) < 0) {
        store_rollback(c);
        return -1;
    }
    return 1;
}

json_t *tenant_init_json(const tenant_init_t *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "project_id", t->project_id, "key_id", t->key_id,
                     "key_secret", t->key_secret, "admin_email", t->admin_email, "admin_password",
                     t->admin_password);
}
