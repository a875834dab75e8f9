/* allocator.c: the in-memory allocation rule (see allocator.h): string-keyed maps for
 * agents, categories and conversations, and two indexed binary heaps per category (its
 * waiting conversations, its eligible agents). Pure data structure: no store, no locks. */
#include "contact/allocator.h"
#include "base/hash.h"

#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a string -> index map (open addressing, tombstones) ---- */

typedef struct {
    char (*key)[CONTACT_ID_MAX];
    int *val; /* -1 empty, -2 deleted */
    size_t cap, used;
} smap_t;

static void smap_put(smap_t *m, const char *k, int v);

static void smap_grow(smap_t *m)
{
    smap_t old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->key = xcalloc(m->cap, sizeof *m->key);
    m->val = xmalloc(m->cap * sizeof *m->val);
    for (size_t i = 0; i < m->cap; i++)
        m->val[i] = -1;
    m->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.val[i] >= 0) smap_put(m, old.key[i], old.val[i]);
    free(old.key);
    free(old.val);
}

static long smap_slot(const smap_t *m, const char *k)
{
    if (!m->cap) return -1;
    size_t i = hash_str(k) & (m->cap - 1);
    for (;;) {
        if (m->val[i] == -1) return -1;
        if (m->val[i] >= 0 && strcmp(m->key[i], k) == 0) return (long)i;
        i = (i + 1) & (m->cap - 1);
    }
}

static int smap_get(const smap_t *m, const char *k)
{
    long s = smap_slot(m, k);
    return s < 0 ? -1 : m->val[s];
}

static void smap_put(smap_t *m, const char *k, int v)
{
    long s = smap_slot(m, k);
    if (s >= 0) {
        m->val[s] = v;
        return;
    }
    if ((m->used + 1) * 2 > m->cap) smap_grow(m);
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->val[i] >= 0)
        i = (i + 1) & (m->cap - 1);
    if (m->val[i] == -1) m->used++;
    snprintf(m->key[i], CONTACT_ID_MAX, "%s", k);
    m->val[i] = v;
}

static void smap_del(smap_t *m, const char *k)
{
    long s = smap_slot(m, k);
    if (s >= 0) m->val[s] = -2;
}

/* ---- the model ---- */

typedef struct {
    char id[CONTACT_ID_MAX];
    contact_agent_state_t st;
    int active;
    int *pos; /* per category: index in its agent heap, -1 when not in it */
} agent_t;

typedef struct {
    int *idx; /* heap of indices */
    int n, cap;
} heap_t;

typedef struct {
    char id[CONTACT_ID_MAX];
    int alive;
    contact_skills_t req;
    heap_t convs, agents;
} category_t;

typedef struct {
    char id[CONTACT_ID_MAX];
    int alive;
    int cat;   /* waiting: its category */
    int agent; /* active: its agent, -1 while waiting */
    int priority;
    int64_t queued_at;
    int pos; /* in the category's conversation heap, -1 when not waiting */
} conv_t;

struct contact_alloc {
    agent_t *agents;
    int nagents, cap_agents;
    category_t *cats;
    int ncats, cap_cats;
    conv_t *convs;
    int nconvs, cap_convs;
    int *free_convs;
    int nfree, cap_free;
    smap_t agent_map, cat_map, conv_map;
};

contact_alloc_t *contact_alloc_new(void)
{
    return xcalloc(1, sizeof(contact_alloc_t));
}

void contact_alloc_free(contact_alloc_t *a)
{
    if (!a) return;
    for (int i = 0; i < a->nagents; i++)
        free(a->agents[i].pos);
    for (int i = 0; i < a->ncats; i++) {
        free(a->cats[i].convs.idx);
        free(a->cats[i].agents.idx);
    }
    free(a->agents);
    free(a->cats);
    free(a->convs);
    free(a->free_convs);
    free(a->agent_map.key);
    free(a->agent_map.val);
    free(a->cat_map.key);
    free(a->cat_map.val);
    free(a->conv_map.key);
    free(a->conv_map.val);
    free(a);
}

static int skills_cover(const contact_skills_t *have, const contact_skills_t *need)
{
    for (int i = 0; i < CONTACT_SKILL_WORDS; i++)
        if ((have->w[i] & need->w[i]) != need->w[i]) return 0;
    return 1;
}

/* ---- heaps: comparators say whether x goes before y ---- */

static int conv_before(const contact_alloc_t *a, int x, int y)
{
    const conv_t *p = &a->convs[x], *q = &a->convs[y];
    if (p->priority != q->priority) return p->priority > q->priority;
    if (p->queued_at != q->queued_at) return p->queued_at < q->queued_at;
    return strcmp(p->id, q->id) < 0;
}

static int agent_before(const contact_alloc_t *a, int x, int y)
{
    const agent_t *p = &a->agents[x], *q = &a->agents[y];
    if (p->active != q->active) return p->active < q->active;
    if (p->st.idle_since != q->st.idle_since) return p->st.idle_since < q->st.idle_since;
    return strcmp(p->id, q->id) < 0;
}

typedef struct {
    int (*before)(const contact_alloc_t *, int, int);
    int *(*posp)(contact_alloc_t *, int item, int cat);
} heap_ops_t;

static int *conv_posp(contact_alloc_t *a, int item, int cat)
{
    (void)cat;
    return &a->convs[item].pos;
}

static int *agent_posp(contact_alloc_t *a, int item, int cat)
{
    return &a->agents[item].pos[cat];
}

static const heap_ops_t conv_ops = {conv_before, conv_posp};
static const heap_ops_t agent_ops = {agent_before, agent_posp};

static void heap_set(contact_alloc_t *a, const heap_ops_t *o, heap_t *h, int cat, int i, int item)
{
    h->idx[i] = item;
    *o->posp(a, item, cat) = i;
}

static void heap_up(contact_alloc_t *a, const heap_ops_t *o, heap_t *h, int cat, int i)
{
    int item = h->idx[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!o->before(a, item, h->idx[parent])) break;
        heap_set(a, o, h, cat, i, h->idx[parent]);
        i = parent;
    }
    heap_set(a, o, h, cat, i, item);
}

static void heap_down(contact_alloc_t *a, const heap_ops_t *o, heap_t *h, int cat, int i)
{
    int item = h->idx[i];
    for (;;) {
        int l = 2 * i + 1, best = -1;
        if (l >= h->n) break;
        best = l;
        if (l + 1 < h->n && o->before(a, h->idx[l + 1], h->idx[l])) best = l + 1;
        if (!o->before(a, h->idx[best], item)) break;
        heap_set(a, o, h, cat, i, h->idx[best]);
        i = best;
    }
    heap_set(a, o, h, cat, i, item);
}

static void heap_push(contact_alloc_t *a, const heap_ops_t *o, heap_t *h, int cat, int item)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->idx = xrealloc(h->idx, (size_t)h->cap * sizeof *h->idx);
    }
    h->idx[h->n++] = item;
    heap_up(a, o, h, cat, h->n - 1);
}

static void heap_remove(contact_alloc_t *a, const heap_ops_t *o, heap_t *h, int cat, int item)
{
    int *pp = o->posp(a, item, cat);
    int i = *pp;
    if (i < 0) return;
    *pp = -1;
    int last = h->idx[--h->n];
    if (i == h->n) return;
    heap_set(a, o, h, cat, i, last);
    heap_up(a, o, h, cat, i);
    heap_down(a, o, h, cat, *o->posp(a, last, cat));
}

/* Re-place an item whose key changed. */
static void heap_fix(contact_alloc_t *a, const heap_ops_t *o, heap_t *h, int cat, int item)
{
    int i = *o->posp(a, item, cat);
    if (i < 0) return;
    heap_up(a, o, h, cat, i);
    heap_down(a, o, h, cat, *o->posp(a, item, cat));
}

/* ---- agents in category heaps ---- */

static int agent_available(const agent_t *g)
{
    return g->st.online && g->st.auto_allocate && g->active < g->st.capacity;
}

/* Put agent g in or out of category c's heap, or re-place it, by the current state. */
static void refile(contact_alloc_t *a, int g, int c)
{
    category_t *cat = &a->cats[c];
    agent_t *ag = &a->agents[g];
    int want = cat->alive && agent_available(ag) && skills_cover(&ag->st.skills, &cat->req);
    int in = ag->pos[c] >= 0;
    if (want && !in)
        heap_push(a, &agent_ops, &cat->agents, c, g);
    else if (!want && in)
        heap_remove(a, &agent_ops, &cat->agents, c, g);
    else if (want)
        heap_fix(a, &agent_ops, &cat->agents, c, g);
}

static void refile_all(contact_alloc_t *a, int g)
{
    for (int c = 0; c < a->ncats; c++)
        refile(a, g, c);
}

static int agent_index(contact_alloc_t *a, const char *id)
{
    int g = smap_get(&a->agent_map, id);
    if (g >= 0) return g;
    if (a->nagents == a->cap_agents) {
        a->cap_agents = a->cap_agents ? a->cap_agents * 2 : 16;
        a->agents = xrealloc(a->agents, (size_t)a->cap_agents * sizeof *a->agents);
    }
    g = a->nagents++;
    agent_t *ag = &a->agents[g];
    memset(ag, 0, sizeof *ag);
    snprintf(ag->id, sizeof ag->id, "%s", id);
    ag->st.capacity = 5;
    ag->pos = xmalloc((size_t)(a->cap_cats ? a->cap_cats : 1) * sizeof *ag->pos);
    for (int c = 0; c < a->cap_cats; c++)
        ag->pos[c] = -1;
    smap_put(&a->agent_map, id, g);
    return g;
}

void contact_alloc_agent(contact_alloc_t *a, const char *id, const contact_agent_state_t *st)
{
    int g = agent_index(a, id);
    a->agents[g].st = *st;
    refile_all(a, g);
}

int contact_alloc_agent_get(const contact_alloc_t *a, const char *id, contact_agent_state_t *st,
                            int *active)
{
    int g = smap_get(&a->agent_map, id);
    if (g < 0) return 0;
    if (st) *st = a->agents[g].st;
    if (active) *active = a->agents[g].active;
    return 1;
}

/* ---- categories ---- */

void contact_alloc_category(contact_alloc_t *a, const char *id, const contact_skills_t *req)
{
    int c = smap_get(&a->cat_map, id);
    if (c < 0) {
        if (a->ncats == a->cap_cats) {
            int old = a->cap_cats;
            a->cap_cats = old ? old * 2 : 8;
            a->cats = xrealloc(a->cats, (size_t)a->cap_cats * sizeof *a->cats);
            for (int g = 0; g < a->nagents; g++) {
                a->agents[g].pos = xrealloc(a->agents[g].pos, (size_t)a->cap_cats * sizeof(int));
                for (int k = old; k < a->cap_cats; k++)
                    a->agents[g].pos[k] = -1;
            }
        }
        c = a->ncats++;
        memset(&a->cats[c], 0, sizeof a->cats[c]);
        snprintf(a->cats[c].id, sizeof a->cats[c].id, "%s", id);
        smap_put(&a->cat_map, id, c);
    }
    a->cats[c].alive = 1;
    a->cats[c].req = *req;
    for (int g = 0; g < a->nagents; g++)
        refile(a, g, c);
}

static void conv_release(contact_alloc_t *a, int v)
{
    conv_t *cv = &a->convs[v];
    smap_del(&a->conv_map, cv->id);
    cv->alive = 0;
    if (a->nfree == a->cap_free) {
        a->cap_free = a->cap_free ? a->cap_free * 2 : 64;
        a->free_convs = xrealloc(a->free_convs, (size_t)a->cap_free * sizeof(int));
    }
    a->free_convs[a->nfree++] = v;
}

void contact_alloc_category_drop(contact_alloc_t *a, const char *id)
{
    int c = smap_get(&a->cat_map, id);
    if (c < 0) return;
    category_t *cat = &a->cats[c];
    while (cat->convs.n > 0) {
        int v = cat->convs.idx[0];
        heap_remove(a, &conv_ops, &cat->convs, c, v);
        conv_release(a, v);
    }
    cat->alive = 0;
    for (int g = 0; g < a->nagents; g++)
        refile(a, g, c);
    smap_del(&a->cat_map, id);
    cat->id[0] = 0;
}

/* ---- conversations ---- */

static int conv_index(contact_alloc_t *a, const char *id)
{
    int v = smap_get(&a->conv_map, id);
    if (v >= 0) return v;
    if (a->nfree > 0) {
        v = a->free_convs[--a->nfree];
    } else {
        if (a->nconvs == a->cap_convs) {
            a->cap_convs = a->cap_convs ? a->cap_convs * 2 : 64;
            a->convs = xrealloc(a->convs, (size_t)a->cap_convs * sizeof *a->convs);
        }
        v = a->nconvs++;
    }
    conv_t *cv = &a->convs[v];
    memset(cv, 0, sizeof *cv);
    snprintf(cv->id, sizeof cv->id, "%s", id);
    cv->alive = 1;
    cv->cat = -1;
    cv->agent = -1;
    cv->pos = -1;
    smap_put(&a->conv_map, id, v);
    return v;
}

/* Take v out of wherever it is (queue or an agent's count). */
static void conv_detach(contact_alloc_t *a, int v, int64_t now, int ended)
{
    conv_t *cv = &a->convs[v];
    if (cv->pos >= 0) heap_remove(a, &conv_ops, &a->cats[cv->cat].convs, cv->cat, v);
    if (cv->agent >= 0) {
        agent_t *ag = &a->agents[cv->agent];
        ag->active--;
        if (ended && now > ag->st.idle_since) ag->st.idle_since = now;
        int g = cv->agent;
        cv->agent = -1;
        refile_all(a, g);
    }
}

int contact_alloc_wait(contact_alloc_t *a, const char *conv, const char *category, int priority,
                       int64_t queued_at)
{
    int c = smap_get(&a->cat_map, category);
    if (c < 0) return -1;
    int v = conv_index(a, conv);
    conv_detach(a, v, 0, 0);
    conv_t *cv = &a->convs[v];
    cv->cat = c;
    cv->priority = priority;
    cv->queued_at = queued_at;
    heap_push(a, &conv_ops, &a->cats[c].convs, c, v);
    return 0;
}

void contact_alloc_assign(contact_alloc_t *a, const char *conv, const char *agent)
{
    int v = conv_index(a, conv);
    int g = agent_index(a, agent);
    conv_t *cv = &a->convs[v];
    if (cv->agent == g) return;
    conv_detach(a, v, 0, 0);
    cv->agent = g;
    a->agents[g].active++;
    refile_all(a, g);
}

void contact_alloc_forget(contact_alloc_t *a, const char *conv, int64_t now)
{
    int v = smap_get(&a->conv_map, conv);
    if (v < 0) return;
    conv_detach(a, v, now, 1);
    conv_release(a, v);
}

int contact_alloc_conv_state(const contact_alloc_t *a, const char *conv, char agent[CONTACT_ID_MAX])
{
    int v = smap_get(&a->conv_map, conv);
    if (v < 0) return 0;
    const conv_t *cv = &a->convs[v];
    if (cv->agent >= 0) {
        if (agent) snprintf(agent, CONTACT_ID_MAX, "%s", a->agents[cv->agent].id);
        return 2;
    }
    return cv->pos >= 0 ? 1 : 0;
}

/* ---- decisions and views ---- */

int contact_alloc_next(const contact_alloc_t *a, char conv[CONTACT_ID_MAX],
                       char agent[CONTACT_ID_MAX])
{
    int best = -1, bestcat = -1;
    for (int c = 0; c < a->ncats; c++) {
        const category_t *cat = &a->cats[c];
        if (!cat->alive || cat->convs.n == 0 || cat->agents.n == 0) continue;
        int v = cat->convs.idx[0];
        if (best < 0 || conv_before(a, v, best)) {
            best = v;
            bestcat = c;
        }
    }
    if (best < 0) return 0;
    snprintf(conv, CONTACT_ID_MAX, "%s", a->convs[best].id);
    snprintf(agent, CONTACT_ID_MAX, "%s", a->agents[a->cats[bestcat].agents.idx[0]].id);
    return 1;
}

int contact_alloc_eligible(const contact_alloc_t *a, const char *agent, const char *category)
{
    int g = smap_get(&a->agent_map, agent), c = smap_get(&a->cat_map, category);
    return g >= 0 && c >= 0 && a->agents[g].pos[c] >= 0;
}

int contact_alloc_qualified(const contact_alloc_t *a, const char *agent, const char *category)
{
    int g = smap_get(&a->agent_map, agent), c = smap_get(&a->cat_map, category);
    contact_skills_t none = {0};
    return c >= 0 && skills_cover(g >= 0 ? &a->agents[g].st.skills : &none, &a->cats[c].req);
}

int contact_alloc_waiting(const contact_alloc_t *a, const char *category, int64_t *oldest)
{
    int n = 0;
    int64_t old = 0;
    for (int c = 0; c < a->ncats; c++) {
        const category_t *cat = &a->cats[c];
        if (!cat->alive || (category && strcmp(cat->id, category) != 0)) continue;
        n += cat->convs.n;
        /* The heap's top is by priority first: look for the oldest among all. */
        for (int i = 0; i < cat->convs.n; i++) {
            int64_t q = a->convs[cat->convs.idx[i]].queued_at;
            if (old == 0 || q < old) old = q;
        }
    }
    if (oldest) *oldest = old;
    return n;
}

void contact_alloc_agent_counts(const contact_alloc_t *a, int *online, int *available)
{
    int on = 0, av = 0;
    for (int g = 0; g < a->nagents; g++) {
        if (!a->agents[g].st.online) continue;
        on++;
        if (agent_available(&a->agents[g])) av++;
    }
    if (online) *online = on;
    if (available) *available = av;
}
