/* tenant.h: projects, their access keys and their users (tables in 001_foundation.sql).
 * Key secrets are random 256-bit values stored only as BLAKE2b hashes (a slow password
 * hash buys nothing for secrets of that entropy and would cost every request); user
 * passwords, chosen by people, are stored as Argon2id. Returned JSON is owned by the
 * caller (json_decref). */
#ifndef PARLEY_TENANT_H
#define PARLEY_TENANT_H

#include "base/err.h"
#include "base/ulid.h"
#include "store/store.h"

#include <jansson.h>

#define TENANT_SECRET_MAX 64

typedef struct {
    char project_id[ULID_LEN + 1];
    char key_id[ULID_LEN + 1];
    char key_secret[TENANT_SECRET_MAX];
    char admin_email[128];
    char admin_password[TENANT_SECRET_MAX];
} tenant_init_t;

int tenant_project_create(store_conn_t *c, const char *name, char id[ULID_LEN + 1], err_t *e);
/* Called inside tenant_project_create's transaction for every new project (main sets it
 * to Flows' Hello world deploy); an error undoes the project. NULL = nothing. */
extern int (*tenant_project_hook)(store_conn_t *c, const char *project_id, err_t *e);
/* 1 if the project exists and is not deleted, 0 if not, -1 on error. */
int tenant_project_exists(store_conn_t *c, const char *project_id, err_t *e);
json_t *tenant_project_list(store_conn_t *c, err_t *e);

int tenant_key_create(store_conn_t *c, const char *project_id, const char *name,
                      char key_id[ULID_LEN + 1], char secret[TENANT_SECRET_MAX], err_t *e);
int tenant_key_revoke(store_conn_t *c, const char *project_id, const char *key_id, err_t *e);
json_t *tenant_key_list(store_conn_t *c, const char *project_id, err_t *e);
/* Check key_id + secret; on success fills project_id. Unknown, revoked or wrong secret all
 * answer ERR_UNAUTHENTICATED with the same message (no oracle). */
int tenant_key_verify(store_conn_t *c, const char *key_id, const char *secret,
                      char project_id[ULID_LEN + 1], err_t *e);
/* The key is active (not revoked) and belongs to a live project; fills project_id. */
int tenant_key_active(store_conn_t *c, const char *key_id, char project_id[ULID_LEN + 1], err_t *e);

int tenant_user_create(store_conn_t *c, const char *project_id, const char *email,
                       const char *password, const char *role, char id[ULID_LEN + 1], err_t *e);

/* A fresh store's first project, access key and admin user, in one transaction.
 * Returns 1 if it initialised, 0 if the store already had a project, -1 on error. */
int tenant_init(store_conn_t *c, tenant_init_t *out, err_t *e);
/* The one JSON object `parley init` prints. */
json_t *tenant_init_json(const tenant_init_t *t);

#endif
