/* allocator.h: the automatic-allocation rule of one project, in memory, with no store and
 * no locks (the caller serialises; queue.c holds the contact mutex). The store stays the
 * truth: queue.c loads this from it and mirrors every committed change into it.
 *
 * The rule: the waiting conversation with the highest priority, then the longest wait
 * (queued_at, then id), that some agent can take goes first, to the eligible agent with
 * the fewest active conversations, ties to the one idle longest (smallest idle_since, then
 * id). Eligible: online, auto-allocate on, under capacity, and holding every skill the
 * conversation's category requires, active.
 *
 * Indexes (so a decision never scans conversations or agents): per category, a heap of
 * its waiting conversations (priority, queued_at, id) and a heap of the agents eligible
 * for it right now (active, idle_since, id). An agent's change re-files it in each
 * category's heap (O(categories x log agents)); a decision looks at each category's two
 * heap tops (O(categories)). Ids are copied (up to 26 characters). */
#ifndef PARLEY_CONTACT_ALLOCATOR_H
#define PARLEY_CONTACT_ALLOCATOR_H

#include <stdint.h>

#define CONTACT_ID_MAX      27 /* a ULID and its NUL */
#define CONTACT_SKILL_WORDS 4
#define CONTACT_SKILLS_MAX  (64 * CONTACT_SKILL_WORDS) /* skills per project */

/* A set of skills, as bits (queue.c numbers each project's skills). */
typedef struct {
    uint64_t w[CONTACT_SKILL_WORDS];
} contact_skills_t;

static inline void contact_skills_add(contact_skills_t *s, int bit)
{
    s->w[bit / 64] |= (uint64_t)1 << (bit % 64);
}

typedef struct {
    int online;              /* presence online (away / offline: not allocated) */
    int auto_allocate;       /* agent's own switch */
    int capacity;            /* concurrent conversations */
    int64_t idle_since;      /* ms: last conversation ended or came online, whichever is later */
    contact_skills_t skills; /* active skills only */
} contact_agent_state_t;

typedef struct contact_alloc contact_alloc_t;

contact_alloc_t *contact_alloc_new(void);
void contact_alloc_free(contact_alloc_t *a); /* accepts NULL */

/* Add or change a category's required skills. */
void contact_alloc_category(contact_alloc_t *a, const char *id, const contact_skills_t *req);
/* Remove a category; its waiting conversations are dropped from the queue (the caller
 * moves them first if they should stay). */
void contact_alloc_category_drop(contact_alloc_t *a, const char *id);

/* Add or change an agent (its active count is kept). */
void contact_alloc_agent(contact_alloc_t *a, const char *id, const contact_agent_state_t *st);
/* 1 and the state when known, else 0. active may be NULL. */
int contact_alloc_agent_get(const contact_alloc_t *a, const char *id, contact_agent_state_t *st,
                            int *active);

/* Put a conversation in the waiting queue (or move it: new category, priority or
 * queued_at). If it was active, its agent's count drops. 0, or -1 for an unknown
 * category. */
int contact_alloc_wait(contact_alloc_t *a, const char *conv, const char *category, int priority,
                       int64_t queued_at);
/* The conversation is now with agent (creating the agent with a default, offline state
 * when unknown): leaves the queue, counts for the agent (and not for a previous one). */
void contact_alloc_assign(contact_alloc_t *a, const char *conv, const char *agent);
/* The conversation left routing (closed, deleted): leaves the queue or, if active, its
 * agent's count drops and the agent's idle_since becomes now. */
void contact_alloc_forget(contact_alloc_t *a, const char *conv, int64_t now);
/* 1 = waiting, 2 = active (agent copied if not NULL), 0 = unknown. */
int contact_alloc_conv_state(const contact_alloc_t *a, const char *conv,
                             char agent[CONTACT_ID_MAX]);

/* The next decision by the rule, not applied (the caller persists it, then calls
 * contact_alloc_assign). 1 with conv and agent filled, 0 when nothing can be allocated. */
int contact_alloc_next(const contact_alloc_t *a, char conv[CONTACT_ID_MAX],
                       char agent[CONTACT_ID_MAX]);

/* Can agent take conversations of this category right now (eligible and available)? */
int contact_alloc_eligible(const contact_alloc_t *a, const char *agent, const char *category);
/* Does agent hold every skill the category requires, active (presence and load aside)? */
int contact_alloc_qualified(const contact_alloc_t *a, const char *agent, const char *category);
/* Waiting conversations in a category (all categories when NULL); *oldest gets the
 * smallest queued_at (0 when none) if not NULL. */
int contact_alloc_waiting(const contact_alloc_t *a, const char *category, int64_t *oldest);
/* Agents known / online / available (online, auto-allocate on, under capacity). */
void contact_alloc_agent_counts(const contact_alloc_t *a, int *online, int *available);

#endif
