/* users.c: the contact center's users (roles, deactivation) and invitations (people.h).
 * Users live in 001_foundation's users table, created through tenant_user_create; an
 * invitation is the only way in besides `parley init`'s first admin. */
#include "contact/people.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/sec.h"
#include "tenant/tenant.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const roles[] = {"admin", "supervisor", "agent", "dpo", NULL};

static int role_known(const char *r)
{
    for (int i = 0; r && roles[i]; i++)
        if (strcmp(r, roles[i]) == 0) return 1;
    return 0;
}

static json_t *time_json(int64_t ms)
{
    char t[32];
    clock_format_rfc3339(ms, t, sizeof t);
    return json_string(t);
}

#define USER_COLS "id, email, role, created_at, deactivated_at"

static json_t *user_json(store_stmt_t *st)
{
    json_t *u = json_pack("{s:s, s:s, s:s, s:b, s:o}", "id", store_col_text(st, 0), "email",
                          store_col_text(st, 1), "role", store_col_text(st, 2), "active",
                          store_col_is_null(st, 4), "created_at", time_json(store_col_int(st, 3)));
    if (!store_col_is_null(st, 4))
        json_object_set_new(u, "deactivated_at", time_json(store_col_int(st, 4)));
    return u;
}

json_t *contact_user_list(store_conn_t *c, const char *project_id, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT " USER_COLS " FROM users WHERE project_id = $1 ORDER BY id", "s", project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, user_json(st));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "users", arr);
}

json_t *contact_user_get(store_conn_t *c, const char *project_id, const char *id, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e, "SELECT " USER_COLS " FROM users WHERE id = $1 AND project_id = $2", "ss",
                    id, project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *u = rc == 1 ? user_json(st) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "user %s not found", id);
    return u;
}

/* Active admins of the project other than `except`. */
static int64_t other_admins(store_conn_t *c, const char *project_id, const char *except, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT COUNT(*) FROM users WHERE project_id = $1 AND role = "
                                   "'admin' AND deactivated_at IS NULL AND id <> $2",
                                   "ss", project_id, except);
    int rc = st ? store_step(st, e) : -1;
    int64_t n = rc == 1 ? store_col_int(st, 0) : -1;
    store_done(st);
    return n;
}

json_t *contact_user_update(store_conn_t *c, const char *project_id, const char *id, json_t *body,
                            int64_t now, err_t *e)
{
    const char *role = NULL;
    int active = -1;
    if (jsonx_str(body, "role", "role", &role, e) < 0 ||
        jsonx_bool(body, "active", "active", &active, e) < 0)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "role") != 0 && strcmp(key, "active") != 0) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "unknown field \"%.64s\": a user's role and active can be changed", key);
            return NULL;
        }
    }
    if (role && !role_known(role)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "unknown role \"%.32s\": expected admin, supervisor, agent or dpo", role);
        return NULL;
    }
    if (store_begin(c, e) < 0) return NULL;
    json_t *cur = contact_user_get(c, project_id, id, e);
    if (!cur) goto fail;
    int was_admin = strcmp(json_string_value(json_object_get(cur, "role")), "admin") == 0;
    int was_active = json_is_true(json_object_get(cur, "active"));
    json_decref(cur);
    int loses_admin =
        was_admin && was_active && ((role && strcmp(role, "admin") != 0) || active == 0);
    if (loses_admin) {
        int64_t n = other_admins(c, project_id, id, e);
        if (n < 0) goto fail;
        if (n == 0) {
            err_set(e, ERR_FAILED_PRECONDITION,
                    "user %s is the project's last active admin: it can be neither demoted nor "
                    "deactivated",
                    id);
            goto fail;
        }
    }
    if (role && store_exec(c, e, "UPDATE users SET role = $2 WHERE id = $1", "ss", id, role) < 0)
        goto fail;
    if (active == 0 && was_active &&
        (store_exec(c, e, "UPDATE users SET deactivated_at = $2 WHERE id = $1", "si", id, now) <
             0 ||
         store_exec(c, e,
                    "UPDATE contact_sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at "
                    "IS NULL",
                    "si", id, now) < 0))
        goto fail;
    if (active == 1 && !was_active &&
        store_exec(c, e, "UPDATE users SET deactivated_at = NULL WHERE id = $1", "s", id) < 0)
        goto fail;
    json_t *out = contact_user_get(c, project_id, id, e);
    if (!out || store_commit(c, e) < 0) {
        json_decref(out);
        goto fail;
    }
    return out;
fail:
    store_rollback(c);
    return NULL;
}

/* ---- invitations ---- */

static void hash_token(const char *token, uint8_t out[SEC_HASH_LEN])
{
    sec_hash(NULL, token, strlen(token), out);
}

static int email_check(const char *email, err_t *e)
{
    size_t n = strlen(email);
    const char *at = strchr(email, '@');
    if (n == 0 || n > 120 || !at || at == email || !at[1] || strchr(at + 1, '@'))
        return err_set(e, ERR_INVALID_ARGUMENT, "email \"%.128s\" is not an address", email);
    for (const char *p = email; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == ';')
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "email \"%.128s\" is not an address: no spaces, <>,; allowed", email);
    return 0;
}

json_t *contact_invitation_create(store_conn_t *c, const char *project_id, const char *email,
                                  const char *role, const char *actor, int64_t ttl_ms, int64_t now,
                                  char out_token[CONTACT_TOKEN_MAX], err_t *e)
{
    if (email_check(email, e) < 0) return NULL;
    if (!role_known(role)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "unknown role \"%.32s\": expected admin, supervisor, agent or dpo", role);
        return NULL;
    }
    char lemail[128];
    size_t i = 0;
    for (; email[i] && i + 1 < sizeof lemail; i++)
        lemail[i] = (char)tolower((unsigned char)email[i]);
    lemail[i] = '\0';
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id FROM users WHERE project_id = $1 AND lower(email) "
                                   "= $2",
                                   "ss", project_id, lemail);
    int rc = st ? store_step(st, e) : -1;
    char existing[ULID_LEN + 1] = "";
    if (rc == 1) snprintf(existing, sizeof existing, "%s", store_col_text(st, 0));
    store_done(st);
    if (rc < 0) return NULL;
    if (rc == 1) {
        err_set(e, ERR_ALREADY_EXISTS, "user %s already has the email %s in this project", existing,
                lemail);
        return NULL;
    }
    char id[ULID_LEN + 1];
    ulid_new(id);
    sec_random_token(32, out_token, CONTACT_TOKEN_MAX);
    uint8_t h[SEC_HASH_LEN];
    hash_token(out_token, h);
    if (store_exec(c, e,
                   "INSERT INTO contact_invitations (id, project_id, email, role, token_hash, "
                   "invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                   "ssssbsii", id, project_id, lemail, role, h, sizeof h, actor, now,
                   now + ttl_ms) < 0)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", id, "email", lemail, "role", role,
                     "status", "pending", "invited_by", actor, "created_at", time_json(now),
                     "expires_at", time_json(now + ttl_ms));
}

json_t *contact_invitation_list(store_conn_t *c, const char *project_id, err_t *e)
{
    int64_t now = clock_now_ms();
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, email, role, invited_by, created_at, expires_at, "
                                   "accepted_at, revoked_at, user_id FROM contact_invitations "
                                   "WHERE project_id = $1 ORDER BY id",
                                   "s", project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        const char *status = !store_col_is_null(st, 6)     ? "accepted"
                             : !store_col_is_null(st, 7)   ? "revoked"
                             : store_col_int(st, 5) <= now ? "expired"
                                                           : "pending";
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", store_col_text(st, 0),
                              "email", store_col_text(st, 1), "role", store_col_text(st, 2),
                              "status", status, "invited_by", store_col_text(st, 3), "created_at",
                              time_json(store_col_int(st, 4)), "expires_at",
                              time_json(store_col_int(st, 5)));
        if (store_col_text(st, 8))
            json_object_set_new(o, "user_id", json_string(store_col_text(st, 8)));
        json_array_append_new(arr, o);
    }
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "invitations", arr);
}

int contact_invitation_revoke(store_conn_t *c, const char *project_id, const char *id, int64_t now,
                              err_t *e)
{
    int64_t n = store_exec(c, e,
                           "UPDATE contact_invitations SET revoked_at = $3 WHERE id = $1 AND "
                           "project_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
                           "ssi", id, project_id, now);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND, "invitation %s not found, or already accepted or revoked",
                       id);
    return 0;
}

/* The pending invitation behind token: id, project, email, role. */
static int invitation_find(store_conn_t *c, const char *token, int64_t now, char id[ULID_LEN + 1],
                           char project[ULID_LEN + 1], char email[128], char role[16],
                           int64_t *expires, err_t *e)
{
    uint8_t h[SEC_HASH_LEN];
    hash_token(token, h);
    *expires = 0;
    id[0] = project[0] = email[0] = role[0] = '\0';
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, project_id, email, role, expires_at FROM "
                                   "contact_invitations WHERE token_hash = $1 AND accepted_at IS "
                                   "NULL AND revoked_at IS NULL",
                                   "b", h, sizeof h);
    int rc = st ? store_step(st, e) : -1;
    if (rc == 1) {
        snprintf(id, ULID_LEN + 1, "%s", store_col_text(st, 0));
        snprintf(project, ULID_LEN + 1, "%s", store_col_text(st, 1));
        snprintf(email, 128, "%s", store_col_text(st, 2));
        snprintf(role, 16, "%s", store_col_text(st, 3));
        *expires = store_col_int(st, 4);
    }
    store_done(st);
    if (rc < 0) return -1;
    if (rc != 1)
        return err_set(e, ERR_NOT_FOUND,
                       "invitation not found: the link is wrong, already used or revoked");
    if (*expires <= now)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "invitation expired; ask an admin for a new one");
    return 0;
}

json_t *contact_invitation_peek(store_conn_t *c, const char *token, int64_t now, err_t *e)
{
    char id[ULID_LEN + 1], project[ULID_LEN + 1], email[128], role[16];
    int64_t expires;
    if (invitation_find(c, token, now, id, project, email, role, &expires, e) < 0) return NULL;
    return json_pack("{s:s, s:s, s:s, s:o}", "email", email, "role", role, "project_id", project,
                     "expires_at", time_json(expires));
}

int contact_invitation_accept(store_conn_t *c, const char *token, const char *password, int64_t now,
                              contact_user_t *u, err_t *e)
{
    char id[ULID_LEN + 1];
    int64_t expires;
    if (store_begin(c, e) < 0) return -1;
    if (invitation_find(c, token, now, id, u->project_id, u->email, u->role, &expires, e) < 0 ||
        contact_password_check(password, e) < 0)
        goto fail;
    if (tenant_user_create(c, u->project_id, u->email, password, u->role, u->id, e) < 0) {
        if (e->code == ERR_ALREADY_EXISTS)
            err_set(e, ERR_ALREADY_EXISTS, "a user with the email %s already exists", u->email);
        goto fail;
    }
    /* accepted_at IS NULL in the WHERE makes the invitation single-use under races too. */
    int64_t n = store_exec(c, e,
                           "UPDATE contact_invitations SET accepted_at = $2, user_id = $3 WHERE "
                           "id = $1 AND accepted_at IS NULL",
                           "sis", id, now, u->id);
    if (n < 0) goto fail;
    if (n == 0) {
        err_set(e, ERR_NOT_FOUND,
                "invitation not found: the link is wrong, already used or revoked");
        goto fail;
    }
    if (store_commit(c, e) < 0) goto fail;
    return 0;
fail:
    store_rollback(c);
    return -1;
}
