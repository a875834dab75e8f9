/* queue.c: the contact center's queue and assignments (routing.h). The store is the truth
 * (table contact_conversations); each project's allocator (allocator.c) is a mirror loaded
 * on first use and kept in step with every committed change. One mutex serialises every
 * routing change: it is always taken BEFORE a store transaction begins (never inside one),
 * so it cannot deadlock with the store's write lock. The stream consumer, which runs
 * inside a transaction, therefore never takes it: it stages new conversations, and
 * contact_queue_flush mirrors them once its transaction has committed.
 *
 * Races between an automatic decision, a manual pick and a transfer are settled by
 * conditional updates (`WHERE status = 'waiting'`): exactly one wins. */
#include "contact/routing.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/ulid.h"
#include "convo/conversations.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct project {
    char id[CONTACT_ID_MAX];
    contact_alloc_t *alloc;
    char (*skills)[CONTACT_ID_MAX]; /* bit index -> skill id */
    int nskills;
    struct project *next;
} project_t;

typedef struct {
    char project[CONTACT_ID_MAX], conv[CONTACT_ID_MAX], cat[CONTACT_ID_MAX];
    int priority;
    int64_t queued_at;
} staged_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static project_t *g_projects;
static int64_t g_grace_ms = 120000;

static pthread_mutex_t g_stage_mu = PTHREAD_MUTEX_INITIALIZER;
static staged_t *g_staged;
static int g_nstaged, g_cap_staged;

void contact_queue_init(int64_t offline_grace_s)
{
    g_grace_ms = offline_grace_s * 1000;
}

int64_t contact_queue_grace_default(void)
{
    return g_grace_ms / 1000;
}

static void project_free(project_t *p)
{
    contact_alloc_free(p->alloc);
    free(p->skills);
    free(p);
}

static void drop_locked(const char *project_id)
{
    for (project_t **pp = &g_projects; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, project_id) == 0) {
            project_t *p = *pp;
            *pp = p->next;
            project_free(p);
            return;
        }
    }
}

void contact_queue_reset(void)
{
    pthread_mutex_lock(&g_mu);
    while (g_projects) {
        project_t *p = g_projects;
        g_projects = p->next;
        project_free(p);
    }
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_lock(&g_stage_mu);
    g_nstaged = 0;
    pthread_mutex_unlock(&g_stage_mu);
}

void contact_queue_shutdown(void)
{
    contact_queue_reset();
    pthread_mutex_lock(&g_stage_mu);
    free(g_staged);
    g_staged = NULL;
    g_cap_staged = 0;
    pthread_mutex_unlock(&g_stage_mu);
}

/* ---- loading a project's mirror ---- */

static int skill_bit(const project_t *p, const char *skill_id)
{
    for (int i = 0; i < p->nskills; i++)
        if (strcmp(p->skills[i], skill_id) == 0) return i;
    return -1;
}

static int agent_load(store_conn_t *c, project_t *p, const char *user_id, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT a.capacity, a.auto_allocate, CASE WHEN "
                                   "u.deactivated_at IS NULL THEN a.presence ELSE 'offline' END, "
                                   "a.idle_since FROM contact_agents a JOIN users u ON u.id = "
                                   "a.user_id WHERE a.user_id = $1 AND a.project_id = $2",
                                   "ss", user_id, p->id);
    if (!st) return -1;
    int rc = store_step(st, e);
    contact_agent_state_t a = {0};
    if (rc == 1) {
        a.capacity = (int)store_col_int(st, 0);
        a.auto_allocate = (int)store_col_int(st, 1);
        a.online = strcmp(store_col_text(st, 2), "online") == 0;
        a.idle_since = store_col_int(st, 3);
    }
    store_done(st);
    if (rc <= 0) return rc;
    st = store_query(c, e,
                     "SELECT skill_id FROM contact_agent_skills WHERE user_id = $1 AND active = 1",
                     "s", user_id);
    if (!st) return -1;
    while ((rc = store_step(st, e)) == 1) {
        int bit = skill_bit(p, store_col_text(st, 0));
        if (bit >= 0) contact_skills_add(&a.skills, bit);
    }
    store_done(st);
    if (rc < 0) return -1;
    contact_alloc_agent(p->alloc, user_id, &a);
    return 1;
}

static int category_skills(const project_t *p, const char *json, contact_skills_t *req)
{
    memset(req, 0, sizeof *req);
    json_t *arr = json_loads(json, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        int bit = json_is_string(v) ? skill_bit(p, json_string_value(v)) : -1;
        if (bit >= 0) contact_skills_add(req, bit);
    }
    json_decref(arr);
    return 0;
}

static project_t *project_load(store_conn_t *c, const char *project_id, err_t *e)
{
    project_t *p = xcalloc(1, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", project_id);
    p->alloc = contact_alloc_new();
    p->skills = xcalloc(CONTACT_SKILLS_MAX, sizeof *p->skills);
    int rc;
    store_stmt_t *st = store_query(
        c, e, "SELECT id FROM contact_skills WHERE project_id = $1 ORDER BY id", "s", project_id);
    if (!st) goto fail;
    while ((rc = store_step(st, e)) == 1 && p->nskills < CONTACT_SKILLS_MAX)
        snprintf(p->skills[p->nskills++], CONTACT_ID_MAX, "%s", store_col_text(st, 0));
    store_done(st);
    if (rc < 0) goto fail;
    st = store_query(c, e, "SELECT id, skills FROM contact_categories WHERE project_id = $1", "s",
                     project_id);
    if (!st) goto fail;
    while ((rc = store_step(st, e)) == 1) {
        contact_skills_t req;
        category_skills(p, store_col_text(st, 1), &req);
        contact_alloc_category(p->alloc, store_col_text(st, 0), &req);
    }
    store_done(st);
    if (rc < 0) goto fail;
    /* Agents, then their active skills in one pass. */
    st = store_query(c, e,
                     "SELECT a.user_id, a.capacity, a.auto_allocate, CASE WHEN u.deactivated_at "
                     "IS NULL THEN a.presence ELSE 'offline' END, a.idle_since FROM "
                     "contact_agents a JOIN users u ON u.id = a.user_id WHERE a.project_id = $1",
                     "s", project_id);
    if (!st) goto fail;
    while ((rc = store_step(st, e)) == 1) {
        contact_agent_state_t a = {0};
        a.capacity = (int)store_col_int(st, 1);
        a.auto_allocate = (int)store_col_int(st, 2);
        a.online = strcmp(store_col_text(st, 3), "online") == 0;
        a.idle_since = store_col_int(st, 4);
        contact_alloc_agent(p->alloc, store_col_text(st, 0), &a);
    }
    store_done(st);
    if (rc < 0) goto fail;
    st = store_query(c, e,
                     "SELECT user_id, skill_id FROM contact_agent_skills WHERE project_id = $1 AND "
                     "active = 1 ORDER BY user_id",
                     "s", project_id);
    if (!st) goto fail;
    char cur[CONTACT_ID_MAX] = "";
    contact_agent_state_t a = {0};
    while ((rc = store_step(st, e)) == 1) {
        const char *u = store_col_text(st, 0);
        if (strcmp(u, cur) != 0) {
            if (cur[0]) contact_alloc_agent(p->alloc, cur, &a);
            snprintf(cur, sizeof cur, "%s", u);
            if (!contact_alloc_agent_get(p->alloc, cur, &a, NULL)) memset(&a, 0, sizeof a);
            memset(&a.skills, 0, sizeof a.skills);
        }
        int bit = skill_bit(p, store_col_text(st, 1));
        if (bit >= 0) contact_skills_add(&a.skills, bit);
    }
    if (cur[0] && rc == 0) contact_alloc_agent(p->alloc, cur, &a);
    store_done(st);
    if (rc < 0) goto fail;
    st = store_query(c, e,
                     "SELECT id, category_id, priority, queued_at, status, agent_id FROM "
                     "contact_conversations WHERE project_id = $1 AND status IN ('waiting', "
                     "'active')",
                     "s", project_id);
    if (!st) goto fail;
    while ((rc = store_step(st, e)) == 1) {
        const char *id = store_col_text(st, 0);
        if (strcmp(store_col_text(st, 4), "active") == 0 && store_col_text(st, 5))
            contact_alloc_assign(p->alloc, id, store_col_text(st, 5));
        else
            contact_alloc_wait(p->alloc, id, store_col_text(st, 1), (int)store_col_int(st, 2),
                               store_col_int(st, 3));
    }
    store_done(st);
    if (rc < 0) goto fail;
    return p;
fail:
    project_free(p);
    return NULL;
}

static project_t *project_get(store_conn_t *c, const char *project_id, err_t *e)
{
    for (project_t *p = g_projects; p; p = p->next)
        if (strcmp(p->id, project_id) == 0) return p;
    project_t *p = project_load(c, project_id, e);
    if (!p) return NULL;
    p->next = g_projects;
    g_projects = p;
    return p;
}

/* ---- conversation rows ---- */

#define CONV_COLS                                                                                  \
    "id, conversation_id, contact_id, app_id, channel, category_id, priority, source, status, "    \
    "agent_id, queued_at, assigned_at, first_assigned_at, closed_at, closed_by, wrap_up, "         \
    "created_at, project_id"

static json_t *conv_row(store_stmt_t *st)
{
    json_t *r = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I}", "id", store_col_text(st, 0),
        "conversation_id", store_col_text(st, 1), "contact_id", store_col_text(st, 2), "app_id",
        store_col_text(st, 3), "channel", store_col_text(st, 4), "category_id",
        store_col_text(st, 5), "priority", (json_int_t)store_col_int(st, 6), "source",
        store_col_text(st, 7), "status", store_col_text(st, 8), "queued_at",
        (json_int_t)store_col_int(st, 10), "created_at", (json_int_t)store_col_int(st, 16));
    static const struct {
        const char *key;
        int col, is_int;
    } opt[] = {{"agent_id", 9, 0},   {"assigned_at", 11, 1}, {"first_assigned_at", 12, 1},
               {"closed_at", 13, 1}, {"closed_by", 14, 0},   {"wrap_up", 15, 0}};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        if (store_col_is_null(st, opt[i].col)) continue;
        json_object_set_new(r, opt[i].key,
                            opt[i].is_int ? json_integer(store_col_int(st, opt[i].col))
                                          : json_string(store_col_text(st, opt[i].col)));
    }
    return r;
}

/* The row of id in project (NULL project: any), or NULL with NOT_FOUND. */
static json_t *conv_fetch(store_conn_t *c, const char *project_id, const char *id, err_t *e)
{
    store_stmt_t *st = store_query(c, e,
                                   "SELECT " CONV_COLS " FROM contact_conversations WHERE id = $1 "
                                   "AND project_id = $2",
                                   "ss", id, project_id);
    if (!st) return NULL;
    int rc = store_step(st, e);
    json_t *r = rc == 1 ? conv_row(st) : NULL;
    store_done(st);
    if (rc == 0) err_set(e, ERR_NOT_FOUND, "contact conversation %s not found", id);
    return r;
}

json_t *contact_conv_load(const contact_ctx_t *cx, const char *id, int write, err_t *e)
{
    json_t *r = conv_fetch(cx->conn, cx->project_id, id, e);
    if (!r) return NULL;
    if (cx->role & (CONTACT_R_ADMIN | CONTACT_R_SUPERVISOR)) return r;
    const char *agent = json_string_value(json_object_get(r, "agent_id"));
    if (agent && cx->user_id && strcmp(agent, cx->user_id) == 0) return r;
    (void)write;
    json_decref(r);
    err_set(e, ERR_PERMISSION_DENIED, "contact conversation %s is not assigned to you", id);
    return NULL;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* Events: the assignment for the agent and a queue change for everyone. */
static int emit_assignment(store_conn_t *c, const char *project_id, json_t *row, const char *agent,
                           const char *how, err_t *e)
{
    json_t *d = json_pack("{s:s, s:O}", "reason", how, "conversation", row);
    if (contact_event_add(c, project_id, agent, "assignment", d, e) < 0) return -1;
    d = json_pack("{s:s, s:s, s:s, s:s}", "action", how, "conversation_id", jstr(row, "id"),
                  "category_id", jstr(row, "category_id"), "agent_id", agent);
    return contact_event_add(c, project_id, "*", "queue", d, e) < 0 ? -1 : 0;
}

static int emit_unassigned(store_conn_t *c, const char *project_id, const char *conv,
                           const char *agent, const char *reason, err_t *e)
{
    json_t *d = json_pack("{s:s, s:s}", "conversation_id", conv, "reason", reason);
    return contact_event_add(c, project_id, agent, "unassigned", d, e) < 0 ? -1 : 0;
}

static int emit_queue(store_conn_t *c, const char *project_id, const char *action, json_t *row,
                      err_t *e)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:I}", "action", action, "conversation_id",
                          jstr(row, "id"), "category_id", jstr(row, "category_id"), "priority",
                          json_integer_value(json_object_get(row, "priority")), "queued_at",
                          json_integer_value(json_object_get(row, "queued_at")));
    return contact_event_add(c, project_id, "*", "queue", d, e) < 0 ? -1 : 0;
}

/* ---- automatic allocation ---- */

#define ALLOC_BATCH 256

/* One pass of decisions. On a decision the store refuses (the conversation was moved by a
 * path this mirror has not heard of yet), stops with *stale set: the caller reloads. */
static int allocate_pass(store_conn_t *c, project_t *p, int *stale, err_t *e)
{
    int n = 0, in_tx = 0;
    char conv[CONTACT_ID_MAX], agent[CONTACT_ID_MAX];
    while (contact_alloc_next(p->alloc, conv, agent)) {
        if (!in_tx) {
            if (store_begin(c, e) < 0) goto fail;
            in_tx = 1;
        }
        int64_t now = clock_now_ms();
        int64_t ch = store_exec(c, e,
                                "UPDATE contact_conversations SET status = 'active', agent_id = "
                                "$1, assigned_at = $2, first_assigned_at = "
                                "COALESCE(first_assigned_at, $2) WHERE id = $3 AND status = "
                                "'waiting'",
                                "sis", agent, now, conv);
        if (ch < 0) goto fail;
        if (ch == 0) {
            *stale = 1;
            break;
        }
        json_t *row = conv_fetch(c, p->id, conv, e);
        if (!row) goto fail;
        int rc = emit_assignment(c, p->id, row, agent, "auto", e);
        json_decref(row);
        if (rc < 0) goto fail;
        contact_alloc_assign(p->alloc, conv, agent);
        n++;
        if (n % ALLOC_BATCH == 0) {
            if (store_commit(c, e) < 0) goto fail;
            in_tx = 0;
            contact_events_publish();
        }
    }
    if (in_tx && store_commit(c, e) < 0) goto fail;
    if (in_tx) contact_events_publish();
    return n;
fail:
    if (in_tx) store_rollback(c);
    log_kv(LOG_WARN, "contact allocation failed", "project", p->id, "error", e->message);
    drop_locked(p->id); /* memory may be ahead of the store: reload on next use */
    return -1;
}

/* Allocate until nothing more can be, reloading the mirror when the store disagrees. The
 * project's memory may be replaced: callers must not keep a project_t across this call. */
static int allocate_locked(store_conn_t *c, const char *project_id, err_t *e)
{
    char id[CONTACT_ID_MAX];
    snprintf(id, sizeof id, "%s", project_id);
    int total = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        project_t *p = project_get(c, id, e);
        if (!p) return -1;
        int stale = 0, n = allocate_pass(c, p, &stale, e);
        if (n < 0) return -1;
        total += n;
        if (!stale) return total;
        drop_locked(id);
    }
    return total;
}

int contact_queue_allocate(store_conn_t *c, const char *project_id, err_t *e)
{
    pthread_mutex_lock(&g_mu);
    project_t *p = project_get(c, project_id, e);
    int n = p ? allocate_locked(c, p->id, e) : -1;
    pthread_mutex_unlock(&g_mu);
    return n;
}

int contact_queue_agent_changed(store_conn_t *c, const char *project_id, const char *user_id,
                                err_t *e)
{
    pthread_mutex_lock(&g_mu);
    project_t *p = project_get(c, project_id, e);
    int rc = -1;
    if (p && agent_load(c, p, user_id, e) >= 0) rc = allocate_locked(c, p->id, e);
    pthread_mutex_unlock(&g_mu);
    return rc < 0 ? -1 : 0;
}

int contact_queue_project_changed(store_conn_t *c, const char *project_id, err_t *e)
{
    pthread_mutex_lock(&g_mu);
    drop_locked(project_id);
    project_t *p = project_get(c, project_id, e);
    int rc = p ? allocate_locked(c, p->id, e) : -1;
    pthread_mutex_unlock(&g_mu);
    return rc < 0 ? -1 : 0;
}

/* ---- entering the queue (inside the consumer's transaction) ---- */

int contact_queue_enqueue(store_conn_t *c, const char *project_id, const contact_enqueue_t *q,
                          char *out, err_t *e)
{
    int64_t now = clock_now_ms();
    ulid_new(out);
    if (store_exec(c, e,
                   "INSERT INTO contact_conversations (id, project_id, conversation_id, "
                   "contact_id, app_id, channel, category_id, priority, source, status, queued_at, "
                   "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', $10, $10)",
                   "sssssssdsi", out, project_id, q->conversation_id,
                   q->contact_id ? q->contact_id : "", q->app_id, q->channel ? q->channel : "",
                   q->category_id, q->priority, q->source, now) < 0)
        return -1;
    json_t *row = conv_fetch(c, project_id, out, e);
    if (!row) return -1;
    int rc = emit_queue(c, project_id, "added", row, e);
    json_decref(row);
    if (rc < 0) return -1;
    pthread_mutex_lock(&g_stage_mu);
    if (g_nstaged == g_cap_staged) {
        g_cap_staged = g_cap_staged ? g_cap_staged * 2 : 64;
        g_staged = xrealloc(g_staged, (size_t)g_cap_staged * sizeof *g_staged);
    }
    staged_t *s = &g_staged[g_nstaged++];
    snprintf(s->project, sizeof s->project, "%s", project_id);
    snprintf(s->conv, sizeof s->conv, "%s", out);
    snprintf(s->cat, sizeof s->cat, "%s", q->category_id);
    s->priority = q->priority;
    s->queued_at = now;
    pthread_mutex_unlock(&g_stage_mu);
    return 0;
}

void contact_queue_flush(store_t *s, int drop)
{
    pthread_mutex_lock(&g_stage_mu);
    staged_t *list = g_staged;
    int n = g_nstaged;
    g_staged = NULL;
    g_nstaged = g_cap_staged = 0;
    pthread_mutex_unlock(&g_stage_mu);
    if (n == 0) {
        free(list);
        return;
    }
    err_t e;
    store_conn_t *c = store_conn(s, &e);
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < n; i++) {
        if (drop || !c) {
            drop_locked(list[i].project);
            continue;
        }
        /* A mirror loaded after the commit already holds the conversation (perhaps
         * allocated since): only an unknown one is added. */
        project_t *p = project_get(c, list[i].project, &e);
        if (p && contact_alloc_conv_state(p->alloc, list[i].conv, NULL) == 0 &&
            contact_alloc_wait(p->alloc, list[i].conv, list[i].cat, list[i].priority,
                               list[i].queued_at) < 0)
            drop_locked(list[i].project); /* a category made meanwhile: reload */
    }
    /* Allocate once per project touched. */
    for (int i = 0; c && !drop && i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(list[j].project, list[i].project) == 0;
        if (seen) continue;
        project_t *p = project_get(c, list[i].project, &e);
        if (p) allocate_locked(c, p->id, &e);
    }
    pthread_mutex_unlock(&g_mu);
    free(list);
}

/* ---- manual allocation, transfers, closing ---- */

static int need_user(const contact_ctx_t *cx, err_t *e)
{
    if (cx->user_id && *cx->user_id) return 0;
    return err_set(e, ERR_FAILED_PRECONDITION,
                   "a project access key is not an agent; log in as a user to take conversations");
}

json_t *contact_queue_list(const contact_ctx_t *cx, err_t *e)
{
    int all = (cx->role & (CONTACT_R_ADMIN | CONTACT_R_SUPERVISOR)) != 0;
    store_stmt_t *st = store_query(cx->conn, e,
                                   "SELECT " CONV_COLS " FROM contact_conversations WHERE "
                                   "project_id = $1 AND status = 'waiting' ORDER BY priority DESC, "
                                   "queued_at, id LIMIT 1000",
                                   "s", cx->project_id);
    if (!st) return NULL;
    json_t *arr = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(arr, conv_row(st));
    store_done(st);
    if (rc < 0) {
        json_decref(arr);
        return NULL;
    }
    if (!all) {
        pthread_mutex_lock(&g_mu);
        project_t *p = project_get(cx->conn, cx->project_id, e);
        json_t *mine = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            if (p && contact_alloc_qualified(p->alloc, cx->user_id, jstr(v, "category_id")))
                json_array_append(mine, v);
        }
        pthread_mutex_unlock(&g_mu);
        json_decref(arr);
        if (!p) {
            json_decref(mine);
            return NULL;
        }
        arr = mine;
    }
    return json_pack("{s:o}", "conversations", arr);
}

json_t *contact_queue_pick(const contact_ctx_t *cx, const char *id, err_t *e)
{
    if (need_user(cx, e) < 0) return NULL;
    pthread_mutex_lock(&g_mu);
    json_t *row = NULL, *res = NULL;
    project_t *p = project_get(cx->conn, cx->project_id, e);
    if (!p || !(row = conv_fetch(cx->conn, cx->project_id, id, e))) goto out;
    if (strcmp(jstr(row, "status"), "waiting") != 0) {
        err_set(e, ERR_ABORTED, "contact conversation %s is no longer waiting: %s", id,
                strcmp(jstr(row, "status"), "closed") == 0 ? "it was closed"
                                                           : "another agent took it first");
        goto out;
    }
    if (!(cx->role & (CONTACT_R_ADMIN | CONTACT_R_SUPERVISOR)) &&
        !contact_alloc_qualified(p->alloc, cx->user_id, jstr(row, "category_id"))) {
        err_set(e, ERR_PERMISSION_DENIED,
                "you do not hold every skill category %s requires (active)",
                jstr(row, "category_id"));
        goto out;
    }
    int64_t now = clock_now_ms();
    if (store_begin(cx->conn, e) < 0) goto out;
    int64_t ch = store_exec(cx->conn, e,
                            "UPDATE contact_conversations SET status = 'active', agent_id = $1, "
                            "assigned_at = $2, first_assigned_at = COALESCE(first_assigned_at, "
                            "$2) WHERE id = $3 AND status = 'waiting'",
                            "sis", cx->user_id, now, id);
    if (ch == 0) err_set(e, ERR_ABORTED, "contact conversation %s was taken by another agent", id);
    json_decref(row);
    row = ch > 0 ? conv_fetch(cx->conn, cx->project_id, id, e) : NULL;
    if (!row || emit_assignment(cx->conn, cx->project_id, row, cx->user_id, "picked", e) < 0 ||
        store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        goto out;
    }
    contact_alloc_assign(p->alloc, id, cx->user_id);
    contact_events_publish();
    res = json_incref(row);
out:
    json_decref(row);
    pthread_mutex_unlock(&g_mu);
    return res;
}

json_t *contact_conv_transfer(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    json_t *to_agent = json_object_get(body, "agent_id"),
           *to_cat = json_object_get(body, "category_id");
    if (!!to_agent == !!to_cat || (to_agent && !json_is_string(to_agent)) ||
        (to_cat && !json_is_string(to_cat))) {
        err_set(e, ERR_INVALID_ARGUMENT, "give exactly one of agent_id or category_id (a string)");
        return NULL;
    }
    char target[ULID_LEN + 1];
    if (convo_norm_id(json_string_value(to_agent ? to_agent : to_cat),
                      to_agent ? "agent_id" : "category_id", target, e) < 0)
        return NULL;
    pthread_mutex_lock(&g_mu);
    json_t *row = NULL, *res = NULL;
    project_t *p = project_get(cx->conn, cx->project_id, e);
    if (!p || !(row = contact_conv_load(cx, id, 1, e))) goto out;
    if (strcmp(jstr(row, "status"), "closed") == 0) {
        err_set(e, ERR_FAILED_PRECONDITION, "contact conversation %s is closed", id);
        goto out;
    }
    char old[CONTACT_ID_MAX];
    snprintf(old, sizeof old, "%s", jstr(row, "agent_id"));
    int64_t now = clock_now_ms();
    if (to_agent) {
        store_stmt_t *st = store_query(cx->conn, e,
                                       "SELECT 1 FROM users WHERE id = $1 AND project_id = $2 AND "
                                       "deactivated_at IS NULL",
                                       "ss", target, cx->project_id);
        int rc = st ? store_step(st, e) : -1;
        store_done(st);
        if (rc == 0) err_set(e, ERR_NOT_FOUND, "agent %s not found", target);
        if (rc != 1) goto out;
    } else {
        store_stmt_t *st = store_query(cx->conn, e,
                                       "SELECT 1 FROM contact_categories WHERE id = $1 AND "
                                       "project_id = $2",
                                       "ss", target, cx->project_id);
        int rc = st ? store_step(st, e) : -1;
        store_done(st);
        if (rc == 0) err_set(e, ERR_NOT_FOUND, "category %s not found", target);
        if (rc != 1) goto out;
    }
    if (store_begin(cx->conn, e) < 0) goto out;
    int64_t ch;
    if (to_agent) {
        store_exec(cx->conn, e,
                   "INSERT INTO contact_agents (user_id, project_id, updated_at) VALUES ($1, $2, "
                   "$3) ON CONFLICT DO NOTHING",
                   "ssi", target, cx->project_id, now);
        ch = store_exec(cx->conn, e,
                        "UPDATE contact_conversations SET status = 'active', agent_id = $1, "
                        "assigned_at = $2, first_assigned_at = COALESCE(first_assigned_at, $2) "
                        "WHERE id = $3 AND status <> 'closed'",
                        "sis", target, now, id);
    } else {
        ch = store_exec(cx->conn, e,
                        "UPDATE contact_conversations SET status = 'waiting', agent_id = NULL, "
                        "category_id = $1 WHERE id = $2 AND status <> 'closed'",
                        "ss", target, id);
    }
    json_decref(row);
    row = ch > 0 ? conv_fetch(cx->conn, cx->project_id, id, e) : NULL;
    int rc = row ? 0 : -1;
    if (rc == 0 && old[0] && strcmp(old, target) != 0)
        rc = emit_unassigned(cx->conn, cx->project_id, id, old, "transferred", e);
    if (rc == 0)
        rc = to_agent ? emit_assignment(cx->conn, cx->project_id, row, target, "transferred", e)
                      : emit_queue(cx->conn, cx->project_id, "transferred", row, e);
    if (rc < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        goto out;
    }
    contact_events_publish();
    if (to_agent) {
        contact_alloc_assign(p->alloc, id, target);
    } else if (contact_alloc_wait(p->alloc, id, target,
                                  (int)json_integer_value(json_object_get(row, "priority")),
                                  json_integer_value(json_object_get(row, "queued_at"))) < 0) {
        drop_locked(cx->project_id);
        p = project_get(cx->conn, cx->project_id, e);
    }
    if (p) allocate_locked(cx->conn, p->id, e);
    res = json_incref(row);
out:
    json_decref(row);
    pthread_mutex_unlock(&g_mu);
    return res;
}

json_t *contact_conv_close(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e)
{
    const char *wrap = NULL;
    json_t *w = body ? json_object_get(body, "wrap_up") : NULL;
    if (w && (!json_is_string(w) || json_string_length(w) > 4000)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "field wrap_up must be a string of at most 4000 characters");
        return NULL;
    }
    if (w) wrap = json_string_value(w);
    pthread_mutex_lock(&g_mu);
    json_t *row = NULL, *res = NULL;
    project_t *p = project_get(cx->conn, cx->project_id, e);
    if (!p || !(row = contact_conv_load(cx, id, 1, e))) goto out;
    if (strcmp(jstr(row, "status"), "closed") == 0) {
        err_set(e, ERR_FAILED_PRECONDITION, "contact conversation %s is already closed", id);
        goto out;
    }
    char agent[CONTACT_ID_MAX], convo_id[CONTACT_ID_MAX];
    snprintf(agent, sizeof agent, "%s", jstr(row, "agent_id"));
    snprintf(convo_id, sizeof convo_id, "%s", jstr(row, "conversation_id"));
    int was_waiting = strcmp(jstr(row, "status"), "waiting") == 0;
    int64_t now = clock_now_ms();
    if (store_begin(cx->conn, e) < 0) goto out;
    int64_t ch = store_exec(cx->conn, e,
                            "UPDATE contact_conversations SET status = 'closed', closed_at = $1, "
                            "closed_by = $2, wrap_up = $3 WHERE id = $4 AND status <> 'closed'",
                            "isss", now, cx->actor, wrap, id);
    if (ch == 0) err_set(e, ERR_ABORTED, "contact conversation %s changed meanwhile; retry", id);
    int rc = ch == 1 ? 0 : -1;
    if (rc == 0 && agent[0])
        rc = store_exec(cx->conn, e, "UPDATE contact_agents SET idle_since = $1 WHERE user_id = $2",
                        "is", now, agent) < 0
                 ? -1
                 : 0;
    if (rc == 0) {
        /* A customer writing after this starts a new Conversation API conversation, and
         * so a new contact-center conversation. */
        convo_ctx_t vx = {cx->conn, cx->project_id, cx->seal_key, cx->actor};
        err_t se;
        json_t *r = convo_conversation_stop(&vx, convo_id, &se);
        if (r)
            json_decref(r);
        else if (se.code != ERR_FAILED_PRECONDITION && se.code != ERR_NOT_FOUND) {
            *e = se;
            rc = -1;
        }
    }
    json_decref(row);
    row = rc == 0 ? conv_fetch(cx->conn, cx->project_id, id, e) : NULL;
    if (row && agent[0]) {
        json_t *d = json_pack("{s:O}", "conversation", row);
        if (contact_event_add(cx->conn, cx->project_id, agent, "closed", d, e) < 0) rc = -1;
    }
    if (row && rc == 0 && was_waiting) rc = emit_queue(cx->conn, cx->project_id, "removed", row, e);
    if (!row || rc < 0 || store_commit(cx->conn, e) < 0) {
        store_rollback(cx->conn);
        goto out;
    }
    contact_events_publish();
    contact_alloc_forget(p->alloc, id, now);
    allocate_locked(cx->conn, p->id, e);
    res = json_incref(row);
out:
    json_decref(row);
    pthread_mutex_unlock(&g_mu);
    return res;
}

/* ---- grace period ---- */

int contact_queue_grace_sweep(store_conn_t *c, int64_t now, err_t *e)
{
    store_stmt_t *st =
        store_query(c, e,
                    "SELECT k.id, k.project_id, k.agent_id FROM contact_conversations k "
                    "JOIN contact_agents a ON a.user_id = k.agent_id JOIN users u ON u.id = "
                    "k.agent_id LEFT JOIN contact_settings s ON s.project_id = k.project_id "
                    "WHERE k.status = 'active' AND ((a.presence = 'offline' AND a.presence_at "
                    "<= $1 - COALESCE(s.offline_grace_s * 1000, $2)) OR u.deactivated_at IS "
                    "NOT NULL) LIMIT 500",
                    "ii", now, g_grace_ms);
    if (!st) return -1;
    json_t *due = json_array();
    int rc;
    while ((rc = store_step(st, e)) == 1)
        json_array_append_new(due, json_pack("[s,s,s]", store_col_text(st, 0),
                                             store_col_text(st, 1), store_col_text(st, 2)));
    store_done(st);
    int n = 0;
    size_t i;
    json_t *v;
    pthread_mutex_lock(&g_mu);
    json_array_foreach(due, i, v)
    {
        if (rc < 0) break;
        const char *id = json_string_value(json_array_get(v, 0));
        const char *project = json_string_value(json_array_get(v, 1));
        const char *agent = json_string_value(json_array_get(v, 2));
        project_t *p = project_get(c, project, e);
        if (!p || store_begin(c, e) < 0) {
            rc = -1;
            break;
        }
        /* Back to the queue at the original waiting position (queued_at is kept). */
        int64_t ch = store_exec(c, e,
                                "UPDATE contact_conversations SET status = 'waiting', agent_id = "
                                "NULL WHERE id = $1 AND status = 'active' AND agent_id = $2",
                                "ss", id, agent);
        json_t *row = ch > 0 ? conv_fetch(c, project, id, e) : NULL;
        if (ch < 0 ||
            (ch > 0 && (!row || emit_unassigned(c, project, id, agent, "offline", e) < 0 ||
                        emit_queue(c, project, "requeued", row, e) < 0)) ||
            store_commit(c, e) < 0) {
            json_decref(row);
            store_rollback(c);
            drop_locked(project);
            rc = -1;
            break;
        }
        if (row && contact_alloc_wait(p->alloc, id, jstr(row, "category_id"),
                                      (int)json_integer_value(json_object_get(row, "priority")),
                                      json_integer_value(json_object_get(row, "queued_at"))) < 0)
            drop_locked(project);
        else if (row && agent_load(c, p, agent, e) < 0) /* deactivated: offline from now */
            drop_locked(project);
        json_decref(row);
        n += ch > 0;
    }
    /* Allocate once for each project touched. */
    json_array_foreach(due, i, v)
    {
        if (rc < 0) break;
        const char *project = json_string_value(json_array_get(v, 1));
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen =
                strcmp(json_string_value(json_array_get(json_array_get(due, j), 1)), project) == 0;
        if (seen) continue;
        project_t *p = project_get(c, project, e);
        if (p) allocate_locked(c, p->id, e);
    }
    pthread_mutex_unlock(&g_mu);
    json_decref(due);
    if (n > 0) contact_events_publish();
    return rc < 0 ? -1 : n;
}

/* ---- views ---- */

int contact_queue_stats(store_conn_t *c, const char *project_id, const char *category,
                        contact_queue_stats_t *out, err_t *e)
{
    pthread_mutex_lock(&g_mu);
    project_t *p = project_get(c, project_id, e);
    if (p) {
        out->waiting = contact_alloc_waiting(p->alloc, category, &out->oldest_queued_at);
        contact_alloc_agent_counts(p->alloc, &out->agents_online, &out->agents_available);
    }
    pthread_mutex_unlock(&g_mu);
    return p ? 0 : -1;
}

int contact_queue_projects(char (*ids)[27], int max)
{
    int n = 0;
    pthread_mutex_lock(&g_mu);
    for (project_t *p = g_projects; p && n < max; p = p->next)
        snprintf(ids[n++], 27, "%s", p->id);
    pthread_mutex_unlock(&g_mu);
    return n;
}
