/* config.c: the configurator's data (routing.h): apps linked as Contact channels, skills,
 * agents' settings (capacity, auto-allocate, presence) and skills (active or not),
 * categories (required skills, priority, target answer time, the default one) and the
 * ordered rules that put new conversations in categories. Every change that can alter
 * allocation is mirrored into the allocator through queue.c (agent_changed /
 * project_changed), which re-runs allocation. */
#include "contact/routing.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/ulid.h"
#include "convo/convo.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN 128

static convo_ctx_t convo_of(const contact_ctx_t *cx)
{
    convo_ctx_t v = {cx->conn, cx->project_id, cx->seal_key, cx->actor};
    return v;
}

static int check_name(json_t *body, const char *key, int required, const char **out, err_t *e)
{
    int got = jsonx_str(body, key, key, out, e);
    if (got < 0) return -1;
    if (got == 0)
        return required ? err_set(e, ERR_INVALID_ARGUMENT, "missing required field %s", key) : 0;
    size_t n = strlen(*out);
    if (n == 0 || n > NAME_MAX_LEN)
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s must be 1 to %d characters", key,
                       NAME_MAX_LEN);
    return 1;
}

/* Run a single-row SELECT; 1 found, 0 not, -1 error. */
static int exists(store_conn_t *c, err_t *e, const char *sql, const char *a, const char *b)
{
    store_stmt_t *st = store_query(c, e, sql, "ss", a, b);
    if (!st) return -1;
    int rc = store_step(st, e);
    store_done(st);
    return rc;
}

/* ---- project settings ---- */

json_t *contact_settings_get(const contact_ctx_t *cx, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT offline_grace_s FROM contact_settings WHERE project_id "
                                   "= $1",
                                   "s", cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    int set = rc == 1 && !store_col_is_null(st, 0);
    int64_t grace = set ? store_col_int(st, 0) : contact_queue_grace_default();
    store_done(st);
    if (rc < 0) return NULL;
    return json_pack("{s:I, s:b}", "offline_grace_s", (json_int_t)grace, "offline_grace_default",
                     !set);
}

json_t *contact_settings_update(const contact_ctx_t *cx, json_t *body, err_t *e)
{
    json_t *v = json_object_get(body, "offline_grace_s");
    int64_t grace = -1;
    if (!v) {
        err_set(e, ERR_INVALID_ARGUMENT, "nothing to change: give offline_grace_s");
        return NULL;
    }
    if (!json_is_null(v) &&
        jsonx_int(body, "offline_grace_s", "offline_grace_s", 0, 86400, &grace, e) < 0)
        return NULL;
    int64_t now = clock_now_ms();
    if (grace < 0 ? store_exec(cx->conn, e,
                               "INSERT INTO contact_settings (project_id, offline_grace_s, "
                               "updated_at) VALUES ($1, NULL, $2) ON CONFLICT (project_id) DO "
                               "UPDATE SET offline_grace_s = NULL, updated_at = $2",
                               "si", cx->project_id, now) < 0
                  : store_exec(cx->conn, e,
                               "INSERT INTO contact_settings (project_id, offline_grace_s, "
                               "updated_at) VALUES ($1, $2, $3) ON CONFLICT (project_id) DO "
                               "UPDATE SET offline_grace_s = $2, updated_at = $3",
                               "sii", cx->project_id, grace, now) < 0)
        return NULL;
    return contact_settings_get(cx, e);
}

/* ---- channels ---- */

int contact_channel_linked(store_conn_t *c, const char *project_id, const char *app_id, err_t *e)
{
    return exists(c, e, "SELECT 1 FROM contact_channels WHERE project_id = $1 AND app_id = $2",
                  project_id, app_id);
}

json_t *contact_channel_list(const contact_ctx_t *cx, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT app_id, created_at FROM contact_channels WHERE "
                                   "project_id = $1 ORDER BY app_id",
                                   "s", cx->project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, json_pack("{s:s, s:I}", "app_id", store_col_text(st, 0),
                                             "created_at", (json_int_t)store_col_int(st, 1)));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "channels", arr);
}

json_t *contact_channel_link(const contact_ctx_t *cx, json_t *body, err_t *e)
{
    const char *app = NULL;
    if (jsonx_require(jsonx_str(body, "app_id", "app_id", &app, e), "app_id", e) < 0) return NULL;
    char canon[ULID_LEN + 1];
    if (convo_norm_id(app, "app_id", canon, e) < 0) return NULL;
    convo_ctx_t vx = convo_of(cx);
    if (convo_require(&vx, CONVO_KIND_APP, canon, e) < 0) return NULL;
    int64_t now = clock_now_ms();
    if (store_exec(cx->conn, e,
                   "INSERT INTO contact_channels (project_id, app_id, created_at) VALUES ($1, $2, "
                   "$3) ON CONFLICT DO NOTHING",
                   "ssi", cx->project_id, canon, now) < 0)
        return NULL;
    return json_pack("{s:s}", "app_id", canon);
}

int contact_channel_unlink(const contact_ctx_t *cx, const char *app_id, err_t *e)
{
    int64_t n = store_exec(cx->conn, e,
                           "DELETE FROM contact_channels WHERE project_id = $1 AND app_id = $2",
                           "ss", cx->project_id, app_id);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND, "app %s is not linked to the contact center", app_id);
    return 0;
}

/* ---- skills ---- */

static int skill_require(store_conn_t *c, const char *project_id, const char *id, err_t *e)
{
    int rc = exists(c, e, "SELECT 1 FROM contact_skills WHERE id = $1 AND project_id = $2", id,
                    project_id);
    if (rc == 0) return err_set(e, ERR_NOT_FOUND, "skill %s not found", id);
    return rc < 0 ? -1 : 0;
}

static json_t *skill_get(store_conn_t *c, const char *project_id, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, name, created_at FROM contact_skills WHERE id = $1 "
                                   "AND project_id = $2",
                                   "ss", id, project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *r = NULL;
    if (rc == 1)
        r = json_pack("{s:s, s:s, s:I}", "id", store_col_text(st, 0), "name", store_col_text(st, 1),
                      "created_at", (json_int_t)store_col_int(st, 2));
    else if (rc == 0)
        err_set(e, ERR_NOT_FOUND, "skill %s not found", id);
    store_done(st);
    return r;
}

json_t *contact_skill_list(const contact_ctx_t *cx, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT id, name, created_at FROM contact_skills WHERE "
                                   "project_id = $1 ORDER BY name, id",
                                   "s", cx->project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "id", store_col_text(st, 0), "name",
                                             store_col_text(st, 1), "created_at",
                                             (json_int_t)store_col_int(st, 2)));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "skills", arr);
}

static int name_taken(int64_t rc, err_t *e, const char *what, const char *name)
{
    if (rc < 0 && e->code == ERR_ALREADY_EXISTS)
        err_set(e, ERR_ALREADY_EXISTS, "a %s named \"%s\" already exists", what, name);
    return rc < 0 ? -1 : 0;
}

json_t *contact_skill_create(const contact_ctx_t *cx, json_t *body, err_t *e)
{
    const char *name;
    if (check_name(body, "name", 1, &name, e) < 0) return NULL;
    store_stmt_t *st =
        store_query(cx->conn, e, "SELECT COUNT(*) FROM contact_skills WHERE project_id = $1", "s",
                    cx->project_id);
    if (!st) return NULL;
    int64_t n = store_step(st, e) == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    if (n >= CONTACT_SKILLS_MAX) {
        err_set(e, ERR_RESOURCE_EXHAUSTED, "a project has at most %d skills", CONTACT_SKILLS_MAX);
        return NULL;
    }
    char id[ULID_LEN + 1];
    ulid_new(id);
    int64_t now = clock_now_ms();
    if (name_taken(store_exec(cx->conn, e,
                              "INSERT INTO contact_skills (id, project_id, name, created_at) "
                              "VALUES ($1, $2, $3, $4)",
                              "sssi", id, cx->project_id, name, now),
                   e, "skill", name) < 0)
        return NULL;
    if (contact_queue_project_changed(cx->conn, cx->project_id, e) < 0) return NULL;
    return skill_get(cx->conn, cx->project_id, id, e);
}

json_t *contact_skill_rename(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    const char *name;
    if (skill_require(cx->conn, cx->project_id, id, e) < 0) return NULL;
    if (check_name(body, "name", 1, &name, e) < 0) return NULL;
    if (name_taken(store_exec(cx->conn, e,
                              "UPDATE contact_skills SET name = $1 WHERE id = $2 AND project_id = "
                              "$3",
                              "sss", name, id, cx->project_id),
                   e, "skill", name) < 0)
        return NULL;
    return skill_get(cx->conn, cx->project_id, id, e);
}

/* Remove skill_id from every category's requirement list of the project. */
static int categories_drop_skill(store_conn_t *c, const char *project_id, const char *skill_id,
                                 err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT id, skills FROM contact_categories WHERE project_id = $1", "s", project_id);
    if (!st) return -1;
    json_t *updates = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        json_t *sk = json_loads(store_col_text(st, 1), 0, NULL);
        size_t i;
        json_t *v;
        int changed = 0;
        json_array_foreach(sk, i, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), skill_id) == 0) {
                json_array_remove(sk, i);
                changed = 1;
                break;
            }
        }
        if (changed)
            json_array_append_new(updates, json_pack("[s,o]", store_col_text(st, 0), sk));
        else
            json_decref(sk);
    }
    store_done(st);
    size_t i;
    json_t *u;
    json_array_foreach(updates, i, u)
    {
        if (rc < 0) break;
        char *text = json_dumps(json_array_get(u, 1), JSON_COMPACT);
        if (store_exec(c, e, "UPDATE contact_categories SET skills = $1 WHERE id = $2", "ss", text,
                       json_string_value(json_array_get(u, 0))) < 0)
            rc = -1;
        free(text);
    }
    json_decref(updates);
    return rc < 0 ? -1 : 0;
}

int contact_skill_delete(const contact_ctx_t *cx, const char *id, err_t *e)
{
    if (skill_require(cx->conn, cx->project_id, id, e) < 0) return -1;
    if (store_begin(cx->conn, e) < 0) return -1;
    if (store_exec(cx->conn, e, "DELETE FROM contact_agent_skills WHERE skill_id = $1", "s", id) <
            0 ||
        categories_drop_skill(cx->conn, cx->project_id, id, e) < 0 ||
        store_exec(cx->conn, e, "DELETE FROM contact_skills WHERE id = $1", "s", id) < 0 ||
        store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        return -1;
    }
    return contact_queue_project_changed(cx->conn, cx->project_id, e) < 0 ? -1 : 0;
}

/* ---- agents ---- */

/* The user must be in the project and active; makes its contact_agents row on first use.
 * role_out (may be NULL) gets the user's role name (32 bytes). */
static int agent_ensure(store_conn_t *c, const char *project_id, const char *user_id,
                        char *role_out, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT role, deactivated_at FROM users WHERE id = $1 AND "
                                   "project_id = $2",
                                   "ss", user_id, project_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    int deactivated = rc == 1 && !store_col_is_null(st, 1);
    if (rc == 1 && role_out) snprintf(role_out, 32, "%s", store_col_text(st, 0));
    store_done(st);
    if (rc < 0) return -1;
    if (rc == 0) return err_set(e, ERR_NOT_FOUND, "user %s not found", user_id);
    if (deactivated) return err_set(e, ERR_FAILED_PRECONDITION, "user %s is deactivated", user_id);
    return store_exec(c, e,
                      "INSERT INTO contact_agents (user_id, project_id, updated_at) VALUES ($1, "
                      "$2, $3) ON CONFLICT DO NOTHING",
                      "ssi", user_id, project_id, clock_now_ms()) < 0
               ? -1
               : 0;
}

static json_t *agent_json(store_conn_t *c, const char *project_id, const char *user_id, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e,
                    "SELECT a.capacity, a.auto_allocate, a.presence, a.presence_at, a.idle_since, "
                    "u.email, u.role FROM contact_agents a JOIN users u ON u.id = a.user_id "
                    "WHERE a.user_id = $1 AND a.project_id = $2",
                    "ss", user_id, project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *r = NULL;
    if (rc == 1)
        r = json_pack("{s:s, s:s, s:s, s:I, s:b, s:s, s:I, s:I}", "user_id", user_id, "email",
                      store_col_text(st, 5), "role", store_col_text(st, 6), "capacity",
                      (json_int_t)store_col_int(st, 0), "auto_allocate", (int)store_col_int(st, 1),
                      "presence", store_col_text(st, 2), "presence_time",
                      (json_int_t)store_col_int(st, 3), "idle_since",
                      (json_int_t)store_col_int(st, 4));
    else if (rc == 0)
        err_set(e, ERR_NOT_FOUND, "agent %s not found", user_id);
    store_done(st);
    if (!r) return NULL;
    st = store_query(c, e,
                     "SELECT s.id, s.name, a.active FROM contact_agent_skills a JOIN "
                     "contact_skills s ON s.id = a.skill_id WHERE a.user_id = $1 ORDER BY s.name",
                     "s", user_id);
    json_t *skills = json_array();
    rc = st ? 0 : -1;
    while (st && (rc = store_step(st, e)) == 1)
        json_array_append_new(
            skills, json_pack("{s:s, s:s, s:b}", "skill_id", store_col_text(st, 0), "name",
                              store_col_text(st, 1), "active", (int)store_col_int(st, 2)));
    store_done(st);
    if (rc < 0) {
        json_decref(skills);
        json_decref(r);
        return NULL;
    }
    json_object_set_new(r, "skills", skills);
    st = store_query(c, e,
                     "SELECT COUNT(*) FROM contact_conversations WHERE agent_id = $1 AND status = "
                     "'active'",
                     "s", user_id);
    int64_t active = st && store_step(st, e) == 1 ? store_col_int(st, 0) : 0;
    store_done(st);
    json_object_set_new(r, "active_conversations", json_integer(active));
    return r;
}

json_t *contact_agent_get(const contact_ctx_t *cx, const char *user_id, err_t *e)
{
    if (agent_ensure(cx->conn, cx->project_id, user_id, NULL, e) < 0) return NULL;
    return agent_json(cx->conn, cx->project_id, user_id, e);
}

json_t *contact_agent_list(const contact_ctx_t *cx, err_t *e)
{
    /* Every active user of the project who may take conversations (agents, supervisors,
     * admins) is listed; rows are made on first use. */
    json_t *ids = convo_col_strings(
        store_query(cx->conn, e,
                    "SELECT id FROM users WHERE project_id = $1 AND deactivated_at "
                    "IS NULL AND role IN ('agent', 'supervisor', 'admin') ORDER BY id",
                    "s", cx->project_id),
        e);
    if (!ids) return NULL;
    int rc = 0;
    json_t *arr = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (rc < 0) break;
        json_t *a = contact_agent_get(cx, json_string_value(v), e);
        if (!a)
            rc = -1;
        else
            json_array_append_new(arr, a);
    }
    json_decref(ids);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "agents", arr);
}

static const char *const presence_names[] = {"online", "away", "offline", NULL};

json_t *contact_agent_update(const contact_ctx_t *cx, const char *user_id, json_t *body, err_t *e)
{
    int self = cx->user_id && strcmp(cx->user_id, user_id) == 0;
    int admin = (cx->role & CONTACT_R_ADMIN) != 0;
    int64_t capacity = -1;
    int auto_on = -1, presence = -1;
    if (jsonx_int(body, "capacity", "capacity", 0, 1000, &capacity, e) < 0 ||
        jsonx_bool(body, "auto_allocate", "auto_allocate", &auto_on, e) < 0 ||
        jsonx_enum(body, "presence", "presence", presence_names, &presence, e) < 0)
        return NULL;
    if (capacity < 0 && auto_on < 0 && presence < 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "nothing to change: give capacity, auto_allocate or presence");
        return NULL;
    }
    if (capacity >= 0 && !admin) {
        err_set(e, ERR_PERMISSION_DENIED, "only an admin sets an agent's capacity");
        return NULL;
    }
    if ((auto_on >= 0 || presence >= 0) && !self && !admin) {
        err_set(e, ERR_PERMISSION_DENIED,
                "agents change only their own auto_allocate and presence");
        return NULL;
    }
    if (agent_ensure(cx->conn, cx->project_id, user_id, NULL, e) < 0) return NULL;
    int64_t now = clock_now_ms();
    if (store_begin(cx->conn, e) < 0) return NULL;
    int rc = 0;
    if (capacity >= 0)
        rc = (int)store_exec(cx->conn, e,
                             "UPDATE contact_agents SET capacity = $1 WHERE user_id = $2", "is",
                             capacity, user_id);
    if (rc >= 0 && auto_on >= 0)
        rc = (int)store_exec(cx->conn, e,
                             "UPDATE contact_agents SET auto_allocate = $1 WHERE user_id = $2",
                             "ds", auto_on, user_id);
    if (rc >= 0 && presence >= 0) {
        /* Coming online counts as the start of idle time; the presence time starts the
         * grace period of an agent going offline. */
        rc = (int)store_exec(
            cx->conn, e,
            "UPDATE contact_agents SET idle_since = CASE WHEN $1 = 'online' AND presence <> "
            "'online' THEN $2 ELSE idle_since END, presence_at = CASE WHEN presence <> $1 THEN $2 "
            "ELSE presence_at END, presence = $1 WHERE user_id = $3",
            "sis", presence_names[presence], now, user_id);
    }
    if (rc >= 0)
        rc = (int)store_exec(cx->conn, e,
                             "UPDATE contact_agents SET updated_at = $1 WHERE user_id = $2", "is",
                             now, user_id);
    if (rc < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        return NULL;
    }
    if (contact_queue_agent_changed(cx->conn, cx->project_id, user_id, e) < 0) return NULL;
    return agent_json(cx->conn, cx->project_id, user_id, e);
}

json_t *contact_agent_skill_set(const contact_ctx_t *cx, const char *user_id, const char *skill_id,
                                json_t *body, int assign, err_t *e)
{
    int self = cx->user_id && strcmp(cx->user_id, user_id) == 0;
    int admin = (cx->role & CONTACT_R_ADMIN) != 0;
    int active = -1;
    if (body && jsonx_bool(body, "active", "active", &active, e) < 0) return NULL;
    if (assign && !admin) {
        err_set(e, ERR_PERMISSION_DENIED, "only an admin assigns skills");
        return NULL;
    }
    if (!assign && !self && !admin) {
        err_set(e, ERR_PERMISSION_DENIED, "agents toggle only their own skills");
        return NULL;
    }
    if (!assign && active < 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "missing required field active");
        return NULL;
    }
    if (agent_ensure(cx->conn, cx->project_id, user_id, NULL, e) < 0 ||
        skill_require(cx->conn, cx->project_id, skill_id, e) < 0)
        return NULL;
    int64_t n;
    if (assign) {
        n = store_exec(cx->conn, e,
                       "INSERT INTO contact_agent_skills (user_id, skill_id, project_id, active) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, skill_id) DO UPDATE SET "
                       "active = excluded.active",
                       "sssd", user_id, skill_id, cx->project_id, active < 0 ? 1 : active);
    } else {
        n = store_exec(cx->conn, e,
                       "UPDATE contact_agent_skills SET active = $1 WHERE user_id = $2 AND "
                       "skill_id = $3",
                       "dss", active, user_id, skill_id);
        if (n == 0) {
            err_set(e, ERR_NOT_FOUND, "skill %s is not assigned to agent %s", skill_id, user_id);
            return NULL;
        }
    }
    if (n < 0 || contact_queue_agent_changed(cx->conn, cx->project_id, user_id, e) < 0) return NULL;
    return agent_json(cx->conn, cx->project_id, user_id, e);
}

int contact_agent_skill_unassign(const contact_ctx_t *cx, const char *user_id, const char *skill_id,
                                 err_t *e)
{
    if (skill_require(cx->conn, cx->project_id, skill_id, e) < 0) return -1;
    int64_t n = store_exec(cx->conn, e,
                           "DELETE FROM contact_agent_skills WHERE user_id = $1 AND skill_id = $2 "
                           "AND project_id = $3",
                           "sss", user_id, skill_id, cx->project_id);
    if (n < 0) return -1;
    if (n == 0)
        return err_set(e, ERR_NOT_FOUND, "skill %s is not assigned to agent %s", skill_id, user_id);
    return contact_queue_agent_changed(cx->conn, cx->project_id, user_id, e) < 0 ? -1 : 0;
}

/* ---- categories ---- */

static json_t *category_row(store_stmt_t *st)
{
    json_t *skills = json_loads(store_col_text(st, 5), 0, NULL);
    return json_pack("{s:s, s:s, s:I, s:I, s:o, s:b, s:I}", "id", store_col_text(st, 0), "name",
                     store_col_text(st, 1), "priority", (json_int_t)store_col_int(st, 2),
                     "target_answer_s", (json_int_t)store_col_int(st, 3), "skills",
                     skills ? skills : json_array(), "default", (int)store_col_int(st, 4),
                     "created_at", (json_int_t)store_col_int(st, 6));
}

#define CATEGORY_COLS "id, name, priority, target_answer_s, is_default, skills, created_at"

json_t *contact_category_get(const contact_ctx_t *cx, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " CATEGORY_COLS " FROM contact_categories WHERE id = $1 "
                                   "AND project_id = $2",
                                   "ss", id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *r = rc == 1 ? category_row(st) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "category %s not found", id);
    return r;
}

json_t *contact_category_list(const contact_ctx_t *cx, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " CATEGORY_COLS " FROM contact_categories WHERE "
                                   "project_id = $1 ORDER BY priority DESC, name",
                                   "s", cx->project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, category_row(st));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "categories", arr);
}

/* Validate the writable fields of a category body; skills comes back as canonical text. */
static int category_fields(const contact_ctx_t *cx, json_t *body, int create, const char **name,
                           int64_t *priority, int64_t *target, char **skills, int *is_default,
                           err_t *e)
{
    if (check_name(body, "name", create, name, e) < 0 ||
        jsonx_int(body, "priority", "priority", -1000, 1000, priority, e) < 0 ||
        jsonx_int(body, "target_answer_s", "target_answer_s", 1, 7 * 86400, target, e) < 0 ||
        jsonx_bool(body, "default", "default", is_default, e) < 0)
        return -1;
    json_t *sk = NULL;
    if (jsonx_arr(body, "skills", "skills", &sk, e) < 0) return -1;
    if (sk) {
        json_t *canon = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(sk, i, v)
        {
            char id[ULID_LEN + 1], field[32];
            snprintf(field, sizeof field, "skills[%zu]", i);
            if (!json_is_string(v)) {
                err_set(e, ERR_INVALID_ARGUMENT, "field %s must be a skill id", field);
                json_decref(canon);
                return -1;
            }
            if (convo_norm_id(json_string_value(v), field, id, e) < 0 ||
                skill_require(cx->conn, cx->project_id, id, e) < 0) {
                json_decref(canon);
                return -1;
            }
            int dup = 0;
            size_t j;
            json_t *w;
            json_array_foreach(canon, j, w) dup |= strcmp(json_string_value(w), id) == 0;
            if (!dup) json_array_append_new(canon, json_string(id));
        }
        *skills = json_dumps(canon, JSON_COMPACT);
        json_decref(canon);
    }
    return 0;
}

static int category_write(const contact_ctx_t *cx, const char *id, int create, json_t *body,
                          err_t *e)
{
    const char *name = NULL;
    int64_t priority = INT64_MIN, target = INT64_MIN;
    char *skills = NULL;
    int is_default = -1;
    if (category_fields(cx, body, create, &name, &priority, &target, &skills, &is_default, e) < 0)
        return -1;
    if (store_begin(cx->conn, e) < 0) {
        free(skills);
        return -1;
    }
    int64_t rc = 0;
    if (is_default == 1)
        rc = store_exec(cx->conn, e,
                        "UPDATE contact_categories SET is_default = 0 WHERE project_id = $1", "s",
                        cx->project_id);
    if (rc >= 0 && create) {
        rc = store_exec(cx->conn, e,
                        "INSERT INTO contact_categories (id, project_id, name, priority, "
                        "target_answer_s, skills, is_default, created_at) VALUES ($1, $2, $3, $4, "
                        "$5, $6, $7, $8)",
                        "sssiisdi", id, cx->project_id, name, priority == INT64_MIN ? 0 : priority,
                        target == INT64_MIN ? 60 : target, skills ? skills : "[]", is_default == 1,
                        clock_now_ms());
        name_taken(rc, e, "category", name);
    } else if (rc >= 0) {
        if (name) {
            rc = store_exec(cx->conn, e, "UPDATE contact_categories SET name = $1 WHERE id = $2",
                            "ss", name, id);
            name_taken(rc, e, "category", name);
        }
        if (rc >= 0 && priority != INT64_MIN)
            rc =
                store_exec(cx->conn, e, "UPDATE contact_categories SET priority = $1 WHERE id = $2",
                           "is", priority, id);
        if (rc >= 0 && target != INT64_MIN)
            rc = store_exec(cx->conn, e,
                            "UPDATE contact_categories SET target_answer_s = $1 WHERE id = $2",
                            "is", target, id);
        if (rc >= 0 && skills)
            rc = store_exec(cx->conn, e, "UPDATE contact_categories SET skills = $1 WHERE id = $2",
                            "ss", skills, id);
        if (rc >= 0 && is_default >= 0)
            rc = store_exec(cx->conn, e,
                            "UPDATE contact_categories SET is_default = $1 WHERE id = $2", "ds",
                            is_default, id);
    }
    free(skills);
    if (rc < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        return -1;
    }
    return contact_queue_project_changed(cx->conn, cx->project_id, e) < 0 ? -1 : 0;
}

json_t *contact_category_create(const contact_ctx_t *cx, json_t *body, err_t *e)
{
    char id[ULID_LEN + 1];
    ulid_new(id);
    if (category_write(cx, id, 1, body, e) < 0) return NULL;
    return contact_category_get(cx, id, e);
}

json_t *contact_category_update(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    json_t *cur = contact_category_get(cx, id, e);
    if (!cur) return NULL;
    json_decref(cur);
    if (category_write(cx, id, 0, body, e) < 0) return NULL;
    return contact_category_get(cx, id, e);
}

int contact_category_delete(const contact_ctx_t *cx, const char *id, err_t *e)
{
    json_t *cur = contact_category_get(cx, id, e);
    if (!cur) return -1;
    json_decref(cur);
    int rc = exists(cx->conn, e,
                    "SELECT 1 FROM contact_conversations WHERE category_id = $1 AND project_id = "
                    "$2 AND status <> 'closed' LIMIT 1",
                    id, cx->project_id);
    if (rc < 0) return -1;
    if (rc == 1)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "category %s still has open conversations; transfer or close them first",
                       id);
    rc = exists(cx->conn, e,
                "SELECT 1 FROM contact_rules WHERE category_id = $1 AND project_id = $2 LIMIT 1",
                id, cx->project_id);
    if (rc < 0) return -1;
    if (rc == 1)
        return err_set(e, ERR_FAILED_PRECONDITION,
                       "category %s is the target of rules; delete or change them first", id);
    if (store_exec(cx->conn, e, "DELETE FROM contact_categories WHERE id = $1", "s", id) < 0)
        return -1;
    return contact_queue_project_changed(cx->conn, cx->project_id, e) < 0 ? -1 : 0;
}

/* ---- rules ---- */

#define RULE_COLS                                                                                  \
    "id, position, category_id, app_id, channel, keywords, metadata_key, metadata_value, "         \
    "created_at"

static json_t *rule_row(store_stmt_t *st)
{
    json_t *r = json_pack("{s:s, s:I, s:s, s:I}", "id", store_col_text(st, 0), "position",
                          (json_int_t)store_col_int(st, 1), "category_id", store_col_text(st, 2),
                          "created_at", (json_int_t)store_col_int(st, 8));
    static const char *const keys[] = {"app_id", "channel", NULL, "metadata_key", "metadata_value"};
    for (int i = 0; i < 5; i++) {
        const char *v = store_col_text(st, 3 + i);
        if (!v) continue;
        if (i == 2) {
            json_t *kw = json_loads(v, 0, NULL);
            if (kw) json_object_set_new(r, "keywords", kw);
        } else {
            json_object_set_new(r, keys[i], json_string(v));
        }
    }
    return r;
}

json_t *contact_rule_list(const contact_ctx_t *cx, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " RULE_COLS " FROM contact_rules WHERE project_id = $1 "
                                   "ORDER BY position, id",
                                   "s", cx->project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, rule_row(st));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "rules", arr);
}

static json_t *rule_get(const contact_ctx_t *cx, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " RULE_COLS " FROM contact_rules WHERE id = $1 AND "
                                   "project_id = $2",
                                   "ss", id, cx->project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *r = rc == 1 ? rule_row(st) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "rule %s not found", id);
    return r;
}

/* The rule's fields, validated; merged over cur (an existing rule) for updates. Strings
 * point into body/cur; keywords is new text or NULL. */
typedef struct {
    const char *category_id, *app_id, *channel, *metadata_key, *metadata_value;
    char *keywords;
    int64_t position; /* -1 = at the end / unchanged */
    char cat[ULID_LEN + 1], app[ULID_LEN + 1];
} rule_fields_t;

static int opt_str(json_t *body, const char *key, const char **out, err_t *e)
{
    json_t *v = json_object_get(body, key);
    if (v && json_is_null(v)) {
        *out = NULL;
        return 1;
    }
    return jsonx_str(body, key, key, out, e);
}

static int rule_fields(const contact_ctx_t *cx, json_t *body, rule_fields_t *f, err_t *e)
{
    if (opt_str(body, "category_id", &f->category_id, e) < 0 ||
        opt_str(body, "app_id", &f->app_id, e) < 0 ||
        opt_str(body, "channel", &f->channel, e) < 0 ||
        opt_str(body, "metadata_key", &f->metadata_key, e) < 0 ||
        opt_str(body, "metadata_value", &f->metadata_value, e) < 0 ||
        jsonx_int(body, "position", "position", 0, 100000, &f->position, e) < 0)
        return -1;
    if (!f->category_id)
        return err_set(e, ERR_INVALID_ARGUMENT, "missing required field category_id");
    if (convo_norm_id(f->category_id, "category_id", f->cat, e) < 0) return -1;
    json_t *cat = contact_category_get(cx, f->cat, e);
    if (!cat) return -1;
    json_decref(cat);
    f->category_id = f->cat;
    if (f->app_id) {
        if (convo_norm_id(f->app_id, "app_id", f->app, e) < 0) return -1;
        convo_ctx_t vx = convo_of(cx);
        if (convo_require(&vx, CONVO_KIND_APP, f->app, e) < 0) return -1;
        f->app_id = f->app;
    }
    if (f->channel) {
        int ch = convo_channel_parse(f->channel, "channel", e);
        if (ch < 0) return -1;
        f->channel = convo_channel_names[ch];
    }
    if (f->metadata_value && !f->metadata_key)
        return err_set(e, ERR_INVALID_ARGUMENT, "metadata_value needs metadata_key");
    if (f->metadata_value) {
        regex_t re;
        int rc = regcomp(&re, f->metadata_value, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &re, msg, sizeof msg);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "field metadata_value: bad pattern \"%.200s\": %s", f->metadata_value,
                           msg);
        }
        regfree(&re);
    }
    json_t *kw = json_object_get(body, "keywords");
    if (kw && !json_is_null(kw)) {
        if (!json_is_array(kw))
            return err_set(e, ERR_INVALID_ARGUMENT, "field keywords must be an array of words");
        size_t i;
        json_t *v;
        json_array_foreach(kw, i, v)
        {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64)
                return err_set(e, ERR_INVALID_ARGUMENT,
                               "field keywords[%zu] must be a word of 1 to 64 characters", i);
        }
        f->keywords = json_dumps(kw, JSON_COMPACT);
    }
    return 0;
}

static int rule_write(const contact_ctx_t *cx, const char *id, int create, const rule_fields_t *f,
                      err_t *e)
{
    int64_t pos = f->position;
    if (store_begin(cx->conn, e) < 0) return -1;
    int64_t rc = 0;
    if (pos < 0) {
        store_stmt_t *st = store_query(cx->conn, e,
                                       "SELECT COALESCE(MAX(position), -1) + 1 FROM contact_rules "
                                       "WHERE project_id = $1",
                                       "s", cx->project_id);
        rc = st && store_step(st, e) == 1 ? 0 : -1;
        if (rc == 0) pos = store_col_int(st, 0);
        store_done(st);
    } else {
        /* Make room: rules at or after pos move down one. */
        rc = store_exec(cx->conn, e,
                        "UPDATE contact_rules SET position = position + 1 WHERE project_id = $1 "
                        "AND position >= $2 AND id <> $3",
                        "sis", cx->project_id, pos, id);
    }
    if (rc >= 0 && create)
        rc =
            store_exec(cx->conn, e,
                       "INSERT INTO contact_rules (id, project_id, position, category_id, app_id, "
                       "channel, keywords, metadata_key, metadata_value, created_at) VALUES ($1, "
                       "$2, $3, $4, $5, $6, $7, $8, $9, $10)",
                       "ssissssssi", id, cx->project_id, pos, f->category_id, f->app_id, f->channel,
                       f->keywords, f->metadata_key, f->metadata_value, clock_now_ms());
    if (rc >= 0 && !create)
        rc = store_exec(cx->conn, e,
                        "UPDATE contact_rules SET position = $1, category_id = $2, app_id = $3, "
                        "channel = $4, keywords = $5, metadata_key = $6, metadata_value = $7 WHERE "
                        "id = $8",
                        "isssssss", pos, f->category_id, f->app_id, f->channel, f->keywords,
                        f->metadata_key, f->metadata_value, id);
    if (rc < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        return -1;
    }
    return 0;
}

json_t *contact_rule_create(const contact_ctx_t *cx, json_t *body, err_t *e)
{
    rule_fields_t f = {.position = -1};
    if (rule_fields(cx, body, &f, e) < 0) {
        free(f.keywords);
        return NULL;
    }
    char id[ULID_LEN + 1];
    ulid_new(id);
    int rc = rule_write(cx, id, 1, &f, e);
    free(f.keywords);
    return rc < 0 ? NULL : rule_get(cx, id, e);
}

json_t *contact_rule_update(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    /* A rule is replaced by the merge of its stored fields and the body. */
    json_t *cur = rule_get(cx, id, e);
    if (!cur) return NULL;
    json_t *merged = json_deep_copy(cur);
    json_object_del(merged, "id");
    json_object_del(merged, "created_at");
    json_object_update(merged, body);
    json_decref(cur);
    rule_fields_t f = {.position = -1};
    int rc = rule_fields(cx, merged, &f, e);
    if (rc == 0) {
        if (f.position < 0) f.position = json_integer_value(json_object_get(merged, "position"));
        rc = rule_write(cx, id, 0, &f, e);
    }
    free(f.keywords);
    json_decref(merged);
    return rc < 0 ? NULL : rule_get(cx, id, e);
}

int contact_rule_delete(const contact_ctx_t *cx, const char *id, err_t *e)
{
    int64_t n =
        store_exec(cx->conn, e, "DELETE FROM contact_rules WHERE id = $1 AND project_id = $2", "ss",
                   id, cx->project_id);
    if (n < 0) return -1;
    if (n == 0) return err_set(e, ERR_NOT_FOUND, "rule %s not found", id);
    return 0;
}

/* ---- matching ---- */

static int word_char(unsigned char ch)
{
    return isalnum(ch) || ch >= 0x80 || ch == '_';
}

int contact_keywords_match(json_t *keywords, const char *text)
{
    size_t i;
    json_t *v;
    size_t tl = strlen(text);
    json_array_foreach(keywords, i, v)
    {
        const char *w = json_string_value(v);
        size_t wl = w ? strlen(w) : 0;
        if (wl == 0 || wl > tl) continue;
        for (size_t p = 0; p + wl <= tl; p++) {
            if (strncasecmp(text + p, w, wl) != 0) continue;
            if (p > 0 && word_char((unsigned char)text[p - 1])) continue;
            if (p + wl < tl && word_char((unsigned char)text[p + wl])) continue;
            return 1;
        }
    }
    return 0;
}

static int metadata_match(json_t *meta, const char *key, const char *pattern)
{
    if (!meta || !json_is_object(meta)) return 0;
    json_t *v = json_object_get(meta, key);
    if (!v) return 0;
    if (!pattern) return 1;
    char *text = json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
    regex_t re;
    int ok = 0;
    if (text && regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == 0) {
        ok = regexec(&re, text, 0, NULL, 0) == 0;
        regfree(&re);
    }
    free(text);
    return ok;
}

int contact_rules_route(store_conn_t *c, const char *project_id, const contact_route_input_t *in,
                        char *out, int *priority, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e,
                    "SELECT r.category_id, r.app_id, r.channel, r.keywords, "
                    "r.metadata_key, r.metadata_value, k.priority FROM contact_rules "
                    "r JOIN contact_categories k ON k.id = r.category_id WHERE "
                    "r.project_id = $1 ORDER BY r.position, r.id",
                    "s", project_id);
    if (!st) return -1;
    int rc, found = 0;
    while (!found && (rc = store_step(st, e)) == 1) {
        const char *app = store_col_text(st, 1), *ch = store_col_text(st, 2);
        const char *kw = store_col_text(st, 3), *mk = store_col_text(st, 4);
        if (app && strcmp(app, in->app_id ? in->app_id : "") != 0) continue;
        if (ch && strcmp(ch, in->channel ? in->channel : "") != 0) continue;
        if (kw) {
            json_t *k = json_loads(kw, 0, NULL);
            int m = k && contact_keywords_match(k, in->text ? in->text : "");
            json_decref(k);
            if (!m) continue;
        }
        if (mk && !metadata_match(in->metadata, mk, store_col_text(st, 5))) continue;
        snprintf(out, ULID_LEN + 1, "%s", store_col_text(st, 0));
        *priority = (int)store_col_int(st, 6);
        found = 1;
    }
    store_done(st);
    if (!found && rc < 0) return -1;
    if (found) return 0;
    st = store_query(c, e,
                     "SELECT id, priority FROM contact_categories WHERE project_id = $1 AND "
                     "is_default = 1",
                     "s", project_id);
    if (!st) return -1;
    rc = store_step(st, e);
    if (rc == 1) {
        snprintf(out, ULID_LEN + 1, "%s", store_col_text(st, 0));
        *priority = (int)store_col_int(st, 1);
    }
    store_done(st);
    if (rc != 0) return rc < 0 ? -1 : 0;
    /* No default yet: make one, so that no conversation is ever left without a queue. */
    ulid_new(out);
    *priority = 0;
    return store_exec(c, e,
                      "INSERT INTO contact_categories (id, project_id, name, is_default, "
                      "created_at) VALUES ($1, $2, 'default', 1, $3)",
                      "ssi", out, project_id, clock_now_ms()) < 0
               ? -1
               : 0;
}
