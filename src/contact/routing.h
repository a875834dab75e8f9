/* routing.h: the contact center's routing domain, as the HTTP handlers (src/api/
 * contact_routing.c, contact_workspace.c) and the tests see it: the configurator (linked
 * apps, skills, agents' settings and skills, categories, rules: config.c), the queue and
 * allocation (queue.c over allocator.c), the workspace (workspace.c) and the per-user
 * event log behind the SSE stream (events.c).
 *
 * Every function takes a contact_ctx_t (connection, project, the acting user) and returns
 * new JSON owned by the caller, or NULL / -1 with e filled (precise messages; nothing
 * changed on error). Functions that change routing state serialise on the module's mutex,
 * commit, mirror the change into the in-memory allocator and re-run allocation. */
#ifndef PARLEY_CONTACT_ROUTING_H
#define PARLEY_CONTACT_ROUTING_H

#include "base/err.h"
#include "contact/allocator.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
    store_conn_t *conn;
    const char *project_id;
    const char *user_id; /* "" when a project key acts */
    unsigned role;       /* CONTACT_ROLE_* (contact_auth.h); a key acts as admin */
    const char *actor;   /* "user:ID" | "key:ID" */
    const uint8_t *seal_key;
} contact_ctx_t;

/* Role bits, as in api/contact_auth.h (kept equal; the domain does not include api/). */
#define CONTACT_R_ADMIN      1u
#define CONTACT_R_SUPERVISOR 2u
#define CONTACT_R_AGENT      4u

/* ---- config.c: the configurator ---- */

/* Project settings: {offline_grace_s, offline_grace_default (bool: the server's value)}.
 * body {offline_grace_s: 0..86400 | null (back to the server's contact.offline_grace_s)}. */
json_t *contact_settings_get(const contact_ctx_t *cx, err_t *e);
json_t *contact_settings_update(const contact_ctx_t *cx, json_t *body, err_t *e);

json_t *contact_channel_list(const contact_ctx_t *cx, err_t *e);
/* body {app_id}: the app must exist in the project (convo_require). */
json_t *contact_channel_link(const contact_ctx_t *cx, json_t *body, err_t *e);
int contact_channel_unlink(const contact_ctx_t *cx, const char *app_id, err_t *e);
/* 1 if app_id is linked, 0 if not, -1 on error. */
int contact_channel_linked(store_conn_t *c, const char *project_id, const char *app_id, err_t *e);

json_t *contact_skill_list(const contact_ctx_t *cx, err_t *e);
json_t *contact_skill_create(const contact_ctx_t *cx, json_t *body, err_t *e);
json_t *contact_skill_rename(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);
int contact_skill_delete(const contact_ctx_t *cx, const char *id, err_t *e);

/* Agents are users of the project with a contact_agents row (made on first use). */
json_t *contact_agent_list(const contact_ctx_t *cx, err_t *e);
json_t *contact_agent_get(const contact_ctx_t *cx, const char *user_id, err_t *e);
/* body {capacity?, auto_allocate?, presence?} (admins: capacity and auto_allocate of
 * anyone; an agent: its own auto_allocate and presence). */
json_t *contact_agent_update(const contact_ctx_t *cx, const char *user_id, json_t *body, err_t *e);
/* Assign (admin; body {active?}) or toggle (admin or the agent itself; body {active}). */
json_t *contact_agent_skill_set(const contact_ctx_t *cx, const char *user_id, const char *skill_id,
                                json_t *body, int assign, err_t *e);
int contact_agent_skill_unassign(const contact_ctx_t *cx, const char *user_id, const char *skill_id,
                                 err_t *e);

json_t *contact_category_list(const contact_ctx_t *cx, err_t *e);
json_t *contact_category_get(const contact_ctx_t *cx, const char *id, err_t *e);
json_t *contact_category_create(const contact_ctx_t *cx, json_t *body, err_t *e);
json_t *contact_category_update(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);
/* FAILED_PRECONDITION while conversations wait or are active in it. */
int contact_category_delete(const contact_ctx_t *cx, const char *id, err_t *e);

json_t *contact_rule_list(const contact_ctx_t *cx, err_t *e);
json_t *contact_rule_create(const contact_ctx_t *cx, json_t *body, err_t *e);
json_t *contact_rule_update(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);
int contact_rule_delete(const contact_ctx_t *cx, const char *id, err_t *e);

/* What a new conversation looks like to the rules. */
typedef struct {
    const char *app_id, *channel, *text; /* text: the first message's text ("" if none) */
    json_t *metadata;                    /* the contact's metadata as an object, or NULL */
} contact_route_input_t;
/* The category for in (first matching rule, else the default category, created as
 * "default" when the project has none). out: 27 bytes. */
int contact_rules_route(store_conn_t *c, const char *project_id, const contact_route_input_t *in,
                        char *out, int *priority, err_t *e);
/* Case-insensitive whole-word match of any word of `keywords` (a JSON array) in text. */
int contact_keywords_match(json_t *keywords, const char *text);

/* ---- queue.c: queue, allocation, assignments ---- */

/* Module state (contact_start / tests). grace_s: contact.offline_grace_s. */
void contact_queue_init(int64_t offline_grace_s);
/* The server's contact.offline_grace_s. */
int64_t contact_queue_grace_default(void);
void contact_queue_shutdown(void);
/* Forget every project's memory (reloaded from the store on next use). */
void contact_queue_reset(void);

/* A new conversation enters the queue, inside the caller's transaction (the stream
 * consumer's): the row and a queue event are written; the allocator hears of it from
 * contact_queue_flush once the transaction has committed. out: the new id (27 bytes). */
typedef struct {
    const char *conversation_id, *contact_id, *app_id, *channel;
    const char *category_id; /* NULL: route by rules */
    int priority;
    const char *source; /* "inbound" | "handover" */
} contact_enqueue_t;
int contact_queue_enqueue(store_conn_t *c, const char *project_id, const contact_enqueue_t *q,
                          char *out, err_t *e);
/* After the consumer's commit: mirror staged conversations and run allocation for the
 * projects they touched. drop = 1 after a failed commit (the staged rows never were). */
void contact_queue_flush(store_t *s, int drop);

/* Run automatic allocation for a project now. Returns decisions made or -1. */
int contact_queue_allocate(store_conn_t *c, const char *project_id, err_t *e);
/* Requeue conversations of agents offline for longer than the grace period; trim nothing.
 * Returns conversations requeued. */
int contact_queue_grace_sweep(store_conn_t *c, int64_t now, err_t *e);
/* Re-read one agent / everything of a project from the store, then allocate. */
int contact_queue_agent_changed(store_conn_t *c, const char *project_id, const char *user_id,
                                err_t *e);
int contact_queue_project_changed(store_conn_t *c, const char *project_id, err_t *e);

/* The queue view: waiting conversations in allocation order; agents see those they are
 * qualified for, supervisors and admins all. */
json_t *contact_queue_list(const contact_ctx_t *cx, err_t *e);
/* Manual allocation: ABORTED when someone else took it first. */
json_t *contact_queue_pick(const contact_ctx_t *cx, const char *id, err_t *e);
/* body {agent_id} or {category_id}. */
json_t *contact_conv_transfer(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);
/* body {wrap_up?}: closes, stops the Conversation API conversation. */
json_t *contact_conv_close(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);

/* Counts for the dashboard, from memory. */
typedef struct {
    int waiting, agents_online, agents_available;
    int64_t oldest_queued_at; /* 0 when nothing waits */
} contact_queue_stats_t;
int contact_queue_stats(store_conn_t *c, const char *project_id, const char *category,
                        contact_queue_stats_t *out, err_t *e);
/* Projects held in memory (for stats ticks); fills up to max ids (27 bytes each). */
int contact_queue_projects(char (*ids)[27], int max);

/* ---- workspace.c ---- */

json_t *contact_dashboard(const contact_ctx_t *cx, err_t *e);
/* Conversations: mine (active) when mine, else (supervisors) filtered by status. */
json_t *contact_conv_list(const contact_ctx_t *cx, int mine, const char *status, err_t *e);
json_t *contact_conv_get(const contact_ctx_t *cx, const char *id, err_t *e);
json_t *contact_conv_transcript(const contact_ctx_t *cx, const char *id, err_t *e);
/* body {text} | {media: {url}} | {choices: {text, options: [..]}}. */
json_t *contact_conv_reply(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);
json_t *contact_conv_note(const contact_ctx_t *cx, const char *id, json_t *body, err_t *e);
/* Access check shared by the workspace: the row as JSON when cx may act on it. */
json_t *contact_conv_load(const contact_ctx_t *cx, const char *id, int write, err_t *e);

/* ---- events.c: the per-user event log ---- */

/* Append an event for user_id ("*" = everyone in the project) inside the caller's
 * transaction. data is stolen. Returns the id or -1. */
int64_t contact_event_add(store_conn_t *c, const char *project_id, const char *user_id,
                          const char *kind, json_t *data, err_t *e);
/* After a commit that added events: wake SSE streams. */
void contact_events_publish(void);
/* Events for a user after `after`, up to max: [{id, kind, data(obj), created_at}]. A
 * project key (user "") sees every event of the project. */
json_t *contact_events_since(store_conn_t *c, const char *project_id, const char *user_id,
                             int64_t after, int max, err_t *e);
/* The id of the newest event published (for cheap polls). */
int64_t contact_events_head(void);
/* The newest published id a stream of this user ("" = a key: any user) would show; 0 when
 * none since start. A stream whose cursor is at or past it has nothing new. */
int64_t contact_events_latest(const char *project_id, const char *user_id);
/* Forget the per-user ids (at stop). */
void contact_events_reset(void);
int64_t contact_events_trim(store_conn_t *c, int64_t before_ms, err_t *e);

#endif
