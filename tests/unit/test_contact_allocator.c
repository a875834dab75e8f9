/* test_contact_allocator.c: the contact center's allocation rule. First the in-memory
 * allocator (contact/allocator.h) decision by decision: priority, waiting order, skills,
 * capacity, fewest active, idle-longest tie-break; then the store-backed queue
 * (contact/routing.h) on a real SQLite store: every change that can unblock allocation
 * re-runs it, and a conversation requeued after its agent's grace period goes back to its
 * original waiting position. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "base/clock.h"
#include "contact/allocator.h"
#include "contact/contact.h"
#include "contact/routing.h"
#include "store/store.h"
#include "stream/stream.h"
#include "tenant/tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the pure allocator ---- */

static contact_skills_t skills(int a, int b)
{
    contact_skills_t s = {0};
    if (a >= 0) contact_skills_add(&s, a);
    if (b >= 0) contact_skills_add(&s, b);
    return s;
}

static void agent(contact_alloc_t *a, const char *id, int online, int cap, int64_t idle,
                  contact_skills_t sk)
{
    contact_agent_state_t st = {online, 1, cap, idle, sk};
    contact_alloc_agent(a, id, &st);
}

/* Take the next decision and apply it; "conv>agent" or "" when none. */
static const char *decide(contact_alloc_t *a)
{
    static char out[64];
    char conv[CONTACT_ID_MAX], ag[CONTACT_ID_MAX];
    if (!contact_alloc_next(a, conv, ag)) return "";
    contact_alloc_assign(a, conv, ag);
    snprintf(out, sizeof out, "%s>%s", conv, ag);
    return out;
}

static void test_priority_then_waiting_order(void **state)
{
    (void)state;
    contact_alloc_t *a = contact_alloc_new();
    contact_skills_t none = {0};
    contact_alloc_category(a, "cat", &none);
    contact_alloc_wait(a, "c1", "cat", 0, 100);
    contact_alloc_wait(a, "c2", "cat", 5, 300); /* higher priority, later */
    contact_alloc_wait(a, "c3", "cat", 0, 50);  /* oldest, low priority */
    contact_alloc_wait(a, "c4", "cat", 5, 200);
    agent(a, "A", 1, 10, 0, none);
    assert_string_equal(decide(a), "c4>A"); /* priority 5, waited longest */
    assert_string_equal(decide(a), "c2>A");
    assert_string_equal(decide(a), "c3>A"); /* then priority 0 by wait */
    assert_string_equal(decide(a), "c1>A");
    assert_string_equal(decide(a), "");
    contact_alloc_free(a);
}

static void test_priority_across_categories(void **state)
{
    (void)state;
    contact_alloc_t *a = contact_alloc_new();
    contact_skills_t none = {0};
    contact_alloc_category(a, "low", &none);
    contact_alloc_category(a, "high", &none);
    contact_alloc_wait(a, "old", "low", 0, 10);
    contact_alloc_wait(a, "vip", "high", 9, 1000);
    agent(a, "A", 1, 1, 0, none);
    assert_string_equal(decide(a), "vip>A");
    assert_string_equal(decide(a), ""); /* A is at capacity */
    contact_alloc_free(a);
}

static void test_skills_required_and_active(void **state)
{
    (void)state;
    contact_alloc_t *a = contact_alloc_new();
    contact_skills_t fr_billing = skills(0, 1), fr = skills(0, -1);
    contact_alloc_category(a, "billing-fr", &fr_billing);
    contact_alloc_wait(a, "c1", "billing-fr", 0, 1);
    agent(a, "onlyfr", 1, 5, 0, fr); /* lacks billing */
    assert_string_equal(decide(a), "");
    assert_false(contact_alloc_qualified(a, "onlyfr", "billing-fr"));
    agent(a, "both", 0, 5, 0, fr_billing); /* qualified but offline */
    assert_true(contact_alloc_qualified(a, "both", "billing-fr"));
    assert_false(contact_alloc_eligible(a, "both", "billing-fr"));
    assert_string_equal(decide(a), "");
    agent(a, "both", 1, 5, 0, fr_billing); /* comes online */
    assert_string_equal(decide(a), "c1>both");
    /* A category skipped for lack of agents does not block another one behind it. */
    contact_skills_t none = {0};
    contact_alloc_category(a, "general", &none);
    contact_alloc_wait(a, "c2", "billing-fr", 9, 1);
    contact_alloc_wait(a, "c3", "general", 0, 2);
    agent(a, "both", 0, 5, 0, fr_billing);
    assert_string_equal(decide(a), "c3>onlyfr");
    contact_alloc_free(a);
}

static void test_capacity_and_auto_allocate(void **state)
{
    (void)state;
    contact_alloc_t *a = contact_alloc_new();
    contact_skills_t none = {0};
    contact_alloc_category(a, "cat", &none);
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "c%d", i);
        contact_alloc_wait(a, id, "cat", 0, i);
    }
    agent(a, "A", 1, 2, 0, none);
    assert_string_equal(decide(a), "c0>A");
    assert_string_equal(decide(a), "c1>A");
    assert_string_equal(decide(a), ""); /* capacity 2 reached */
    agent(a, "A", 1, 3, 0, none);       /* capacity raised */
    assert_string_equal(decide(a), "c2>A");
    contact_agent_state_t st = {1, 0, 10, 0, none}; /* auto-allocate off */
    contact_alloc_agent(a, "A", &st);
    assert_string_equal(decide(a), "");
    st.auto_allocate = 1;
    contact_alloc_agent(a, "A", &st);
    assert_string_equal(decide(a), "c3>A");
    /* Capacity 0: never allocated. */
    agent(a, "Z", 1, 0, 0, none);
    contact_alloc_wait(a, "c9", "cat", 0, 99);
    agent(a, "A", 1, 4, 0, none);
    assert_string_equal(decide(a), "");
    contact_alloc_free(a);
}

static void test_fewest_active_then_idle_longest(void **state)
{
    (void)state;
    contact_alloc_t *a = contact_alloc_new();
    contact_skills_t none = {0};
    contact_alloc_category(a, "cat", &none);
    agent(a, "A", 1, 5, 300, none);
    agent(a, "B", 1, 5, 100, none); /* idle longest */
    agent(a, "C", 1, 5, 200, none);
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "c%d", i);
        contact_alloc_wait(a, id, "cat", 0, i);
    }
    /* All at 0 active: idle longest first (B, C, A); then all at 1: same order. */
    assert_string_equal(decide(a), "c0>B");
    assert_string_equal(decide(a), "c1>C");
    assert_string_equal(decide(a), "c2>A");
    assert_string_equal(decide(a), "c3>B");
    /* B ends a conversation at t=1000: all have 1 active, and B is now the most
     * recently idle, so C (200) goes first, then A (300) rather than B (1000). */
    contact_alloc_forget(a, "c0", 1000);
    assert_string_equal(decide(a), "c4>C");
    assert_string_equal(decide(a), "c5>A");
    contact_alloc_free(a);
}

static void test_requeue_keeps_position(void **state)
{
    (void)state;
    contact_alloc_t *a = contact_alloc_new();
    contact_skills_t none = {0};
    contact_alloc_category(a, "cat", &none);
    contact_alloc_wait(a, "first", "cat", 0, 100);
    agent(a, "A", 1, 1, 0, none);
    assert_string_equal(decide(a), "first>A");
    contact_alloc_wait(a, "second", "cat", 0, 200);
    contact_alloc_wait(a, "third", "cat", 0, 300);
    /* A's conversation goes back with its original queued_at: ahead of the others. */
    contact_alloc_wait(a, "first", "cat", 0, 100);
    int active = -1;
    contact_alloc_agent_get(a, "A", NULL, &active);
    assert_int_equal(active, 0);
    agent(a, "A", 0, 1, 0, none);
    agent(a, "B", 1, 1, 0, none);
    assert_string_equal(decide(a), "first>B");
    int64_t oldest = 0;
    assert_int_equal(contact_alloc_waiting(a, NULL, &oldest), 2);
    assert_int_equal(oldest, 200);
    contact_alloc_free(a);
}

/* A brute-force reference of the rule, compared decision by decision with the allocator on
 * random instances with random changes between decisions. */
#define RA 40
#define RC 300
#define RK 6

typedef struct {
    int online, auto_on, cap, active;
    int64_t idle;
    contact_skills_t sk;
} ref_agent_t;

typedef struct {
    int cat, prio, state; /* 0 waiting, 1 active, 2 gone */
    int64_t queued;
    int agent;
} ref_conv_t;

static unsigned rnd_state = 12345;
static unsigned rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) & 0xffffff;
}

static int covers(const contact_skills_t *h, const contact_skills_t *n)
{
    for (int i = 0; i < CONTACT_SKILL_WORDS; i++)
        if ((h->w[i] & n->w[i]) != n->w[i]) return 0;
    return 1;
}

static void ref_push_agent(contact_alloc_t *a, ref_agent_t *ag, int g)
{
    char id[16];
    snprintf(id, sizeof id, "g%03d", g);
    contact_agent_state_t st = {ag->online, ag->auto_on, ag->cap, ag->idle, ag->sk};
    contact_alloc_agent(a, id, &st);
}

static void test_matches_reference_rule(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        contact_alloc_t *a = contact_alloc_new();
        ref_agent_t ag[RA];
        ref_conv_t cv[RC];
        contact_skills_t req[RK];
        for (int k = 0; k < RK; k++) {
            req[k] = skills((int)(rnd() % 5), rnd() % 2 ? (int)(rnd() % 5) : -1);
            char id[8];
            snprintf(id, sizeof id, "k%d", k);
            contact_alloc_category(a, id, &req[k]);
        }
        for (int g = 0; g < RA; g++) {
            ag[g] = (ref_agent_t){(int)(rnd() % 4 != 0), (int)(rnd() % 5 != 0),
                                  (int)(rnd() % 4),      0,
                                  (int64_t)(rnd() % 50), {{0}}};
            for (int s = 0; s < 5; s++)
                if (rnd() % 2) contact_skills_add(&ag[g].sk, s);
            ref_push_agent(a, &ag[g], g);
        }
        for (int i = 0; i < RC; i++) {
            cv[i] =
                (ref_conv_t){(int)(rnd() % RK), (int)(rnd() % 3), 0, (int64_t)(rnd() % 1000), -1};
            char id[16], cat[8];
            snprintf(id, sizeof id, "v%03d", i);
            snprintf(cat, sizeof cat, "k%d", cv[i].cat);
            contact_alloc_wait(a, id, cat, cv[i].prio, cv[i].queued);
        }
        int64_t now = 1000;
        for (int step = 0; step < 400; step++) {
            /* Reference decision. */
            int best = -1, bestg = -1;
            for (int i = 0; i < RC; i++) {
                if (cv[i].state != 0) continue;
                int g0 = -1;
                for (int g = 0; g < RA; g++) {
                    ref_agent_t *x = &ag[g];
                    if (!x->online || !x->auto_on || x->active >= x->cap ||
                        !covers(&x->sk, &req[cv[i].cat]))
                        continue;
                    if (g0 < 0 || x->active < ag[g0].active ||
                        (x->active == ag[g0].active && x->idle < ag[g0].idle))
                        g0 = g; /* ids in index order break the last tie */
                }
                if (g0 < 0) continue;
                if (best < 0 || cv[i].prio > cv[best].prio ||
                    (cv[i].prio == cv[best].prio && cv[i].queued < cv[best].queued)) {
                    best = i;
                    bestg = g0;
                }
            }
            char conv[CONTACT_ID_MAX], agid[CONTACT_ID_MAX];
            int got = contact_alloc_next(a, conv, agid);
            assert_int_equal(got, best >= 0);
            if (got) {
                assert_int_equal(atoi(conv + 1), best);
                assert_int_equal(atoi(agid + 1), bestg);
                contact_alloc_assign(a, conv, agid);
                cv[best].state = 1;
                cv[best].agent = bestg;
                ag[bestg].active++;
            }
            /* A random change. */
            now += 10;
            unsigned what = rnd() % 4;
            if (what == 0) { /* a conversation ends */
                int i = (int)(rnd() % RC);
                if (cv[i].state == 1) {
                    char id[16];
                    snprintf(id, sizeof id, "v%03d", i);
                    contact_alloc_forget(a, id, now);
                    ag[cv[i].agent].active--;
                    if (now > ag[cv[i].agent].idle) ag[cv[i].agent].idle = now;
                    cv[i].state = 2;
                }
            } else if (what == 1) { /* an agent changes presence, switch or capacity */
                int g = (int)(rnd() % RA);
                ag[g].online = (int)(rnd() % 3 != 0);
                ag[g].auto_on = (int)(rnd() % 4 != 0);
                ag[g].cap = (int)(rnd() % 4);
                ref_push_agent(a, &ag[g], g);
            } else if (what == 2) { /* a skill toggles */
                int g = (int)(rnd() % RA);
                ag[g].sk.w[0] ^= (uint64_t)1 << (rnd() % 5);
                ref_push_agent(a, &ag[g], g);
            }
        }
        contact_alloc_free(a);
    }
}

static void test_many_waiting_and_agents(void **state)
{
    (void)state;
    /* 10,000 waiting, 1,000 agents with mixed skills: allocation fills every capacity. */
    contact_alloc_t *a = contact_alloc_new();
    for (int c = 0; c < 8; c++) {
        char id[8];
        snprintf(id, sizeof id, "k%d", c);
        contact_skills_t req = skills(c % 4, c >= 4 ? 4 + c % 2 : -1);
        contact_alloc_category(a, id, &req);
    }
    int total_cap = 0;
    for (int g = 0; g < 1000; g++) {
        char id[16];
        snprintf(id, sizeof id, "g%04d", g);
        agent(a, id, 1, 1 + g % 3, g, skills(g % 4, 4 + g % 3));
        total_cap += 1 + g % 3;
    }
    for (int i = 0; i < 10000; i++) {
        char id[16], cat[8];
        snprintf(id, sizeof id, "v%05d", i);
        snprintf(cat, sizeof cat, "k%d", i % 8);
        contact_alloc_wait(a, id, cat, i % 3, 100000 - i);
    }
    int n = 0;
    char conv[CONTACT_ID_MAX], ag[CONTACT_ID_MAX];
    while (contact_alloc_next(a, conv, ag)) {
        contact_alloc_assign(a, conv, ag);
        n++;
    }
    assert_int_equal(n, total_cap);
    assert_int_equal(contact_alloc_waiting(a, NULL, NULL), 10000 - total_cap);
    contact_alloc_free(a);
}

static void test_keywords_whole_words_any_case(void **state)
{
    (void)state;
    json_t *kw = json_pack("[s,s]", "refund", "late delivery");
    assert_true(contact_keywords_match(kw, "I want a REFUND now"));
    assert_true(contact_keywords_match(kw, "refund"));
    assert_true(contact_keywords_match(kw, "(refund)"));
    assert_true(contact_keywords_match(kw, "my late delivery!"));
    assert_false(contact_keywords_match(kw, "it was refunded"));
    assert_false(contact_keywords_match(kw, "prerefund"));
    assert_false(contact_keywords_match(kw, ""));
    json_decref(kw);
}

/* ---- the store-backed queue ---- */

typedef struct {
    char root[64];
    store_t *store;
    store_conn_t *c;
    char project[27];
    contact_ctx_t cx;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->root, "contact") < 0 || !(f->store = fx_store_open(f->root, &f->c))) return -1;
    err_t e = {0};
    if (tenant_project_create(f->c, "p", f->project, &e) < 0) return -1;
    f->cx = (contact_ctx_t){f->c, f->project, "", CONTACT_R_ADMIN, "key:test", NULL};
    contact_queue_init(60);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    contact_queue_shutdown();
    store_close(f->store);
    int rc = fx_rmdir(f->root);
    free(f);
    return rc;
}

static void user(fx_t *f, const char *email, char id[27])
{
    err_t e;
    assert_int_equal(tenant_user_create(f->c, f->project, email, "password-123", "agent", id, &e),
                     0);
}

static json_t *body(const char *text)
{
    json_error_t je;
    json_t *b = json_loads(text, 0, &je);
    assert_non_null(b);
    return b;
}

static void update_agent(fx_t *f, const char *uid, const char *text)
{
    err_t e;
    json_t *b = body(text);
    json_t *r = contact_agent_update(&f->cx, uid, b, &e);
    if (!r) fail_msg("agent update: %s", e.message);
    json_decref(r);
    json_decref(b);
}

/* Enqueue as the stream consumer does (inside a transaction), then flush. */
static void enqueue(fx_t *f, const char *cat, const char *convo, char id[27])
{
    err_t e;
    contact_enqueue_t q = {convo, "contact", "app", "WHATSAPP", cat, 0, "inbound"};
    assert_int_equal(store_begin(f->c, &e), 0);
    assert_int_equal(contact_queue_enqueue(f->c, f->project, &q, id, &e), 0);
    assert_int_equal(store_commit(f->c, &e), 0);
    contact_queue_flush(f->store, 0);
}

static const char *agent_of(fx_t *f, const char *conv)
{
    static char out[27];
    err_t e;
    store_stmt_t *st = store_query(f->c, &e,
                                   "SELECT COALESCE(agent_id, ''), status FROM "
                                   "contact_conversations WHERE id = $1",
                                   "s", conv);
    assert_non_null(st);
    assert_int_equal(store_step(st, &e), 1);
    snprintf(out, sizeof out, "%s",
             strcmp(store_col_text(st, 1), "active") == 0 ? store_col_text(st, 0)
                                                          : store_col_text(st, 1));
    store_done(st);
    return out;
}

static void test_reruns_on_every_unblocking_change(void **state)
{
    fx_t *f = *state;
    err_t e;
    char u1[27], u2[27], c1[27], c2[27], c3[27], c4[27];
    user(f, "a@x.test", u1);
    user(f, "b@x.test", u2);
    json_t *b = body("{\"name\":\"french\"}");
    json_t *skill = contact_skill_create(&f->cx, b, &e);
    json_decref(b);
    assert_non_null(skill);
    const char *sid = json_string_value(json_object_get(skill, "id"));
    char text[200];
    snprintf(text, sizeof text, "{\"name\":\"fr\",\"skills\":[\"%s\"]}", sid);
    b = body(text);
    json_t *cat = contact_category_create(&f->cx, b, &e);
    json_decref(b);
    assert_non_null(cat);
    const char *cid = json_string_value(json_object_get(cat, "id"));

    enqueue(f, cid, "convo1", c1);
    assert_string_equal(agent_of(f, c1), "waiting"); /* nobody online */
    /* Trigger 1: skill assigned (inactive) then toggled active. */
    b = body("{\"active\":false}");
    json_t *r = contact_agent_skill_set(&f->cx, u1, sid, b, 1, &e);
    json_decref(b);
    json_decref(r);
    update_agent(f, u1, "{\"presence\":\"online\",\"capacity\":1}");
    assert_string_equal(agent_of(f, c1), "waiting"); /* skill inactive */
    b = body("{\"active\":true}");
    r = contact_agent_skill_set(&f->cx, u1, sid, b, 0, &e);
    json_decref(b);
    assert_non_null(r);
    json_decref(r);
    assert_string_equal(agent_of(f, c1), u1);
    /* Trigger 2: capacity raised. */
    enqueue(f, cid, "convo2", c2);
    assert_string_equal(agent_of(f, c2), "waiting");
    update_agent(f, u1, "{\"capacity\":2}");
    assert_string_equal(agent_of(f, c2), u1);
    /* Trigger 3: a conversation closed frees capacity. */
    enqueue(f, cid, "convo3", c3);
    assert_string_equal(agent_of(f, c3), "waiting");
    r = contact_conv_close(&f->cx, c1, NULL, &e);
    assert_non_null(r);
    json_decref(r);
    assert_string_equal(agent_of(f, c3), u1);
    /* Trigger 4: another agent comes online (with auto-allocate turned on). */
    enqueue(f, cid, "convo4", c4);
    b = body("{\"active\":true}");
    r = contact_agent_skill_set(&f->cx, u2, sid, b, 1, &e);
    json_decref(b);
    json_decref(r);
    update_agent(f, u2, "{\"auto_allocate\":false}");
    update_agent(f, u2, "{\"presence\":\"online\"}");
    assert_string_equal(agent_of(f, c4), "waiting");
    update_agent(f, u2, "{\"auto_allocate\":true}");
    assert_string_equal(agent_of(f, c4), u2);
    json_decref(skill);
    json_decref(cat);
}

static void test_grace_requeue_original_position(void **state)
{
    fx_t *f = *state;
    err_t e;
    char u1[27], u2[27], c1[27], c2[27], c3[27];
    user(f, "a@x.test", u1);
    user(f, "b@x.test", u2);
    json_t *b = body("{\"name\":\"general\"}");
    json_t *cat = contact_category_create(&f->cx, b, &e);
    json_decref(b);
    const char *cid = json_string_value(json_object_get(cat, "id"));
    update_agent(f, u1, "{\"presence\":\"online\",\"capacity\":1}");
    enqueue(f, cid, "convo1", c1);
    assert_string_equal(agent_of(f, c1), u1);
    usleep(5000);
    enqueue(f, cid, "convo2", c2);
    usleep(5000);
    enqueue(f, cid, "convo3", c3);
    update_agent(f, u1, "{\"presence\":\"offline\"}");
    /* Within the grace period the agent keeps it. */
    assert_int_equal(contact_queue_grace_sweep(f->c, clock_now_ms() + 30000, &e), 0);
    assert_string_equal(agent_of(f, c1), u1);
    assert_int_equal(contact_queue_grace_sweep(f->c, clock_now_ms() + 61000, &e), 1);
    assert_string_equal(agent_of(f, c1), "waiting");
    /* Back at its original position: the next agent gets it before c2 and c3. */
    update_agent(f, u2, "{\"presence\":\"online\",\"capacity\":1}");
    assert_string_equal(agent_of(f, c1), u2);
    assert_string_equal(agent_of(f, c2), "waiting");
    /* The queue view lists c2 then c3. */
    json_t *q = contact_queue_list(&f->cx, &e);
    json_t *arr = json_object_get(q, "conversations");
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), c2);
    json_decref(q);
    json_decref(cat);
}

static void test_grace_project_override_and_deactivated_agents(void **state)
{
    fx_t *f = *state;
    err_t e;
    char u1[27], u2[27], c1[27];
    user(f, "a@x.test", u1);
    user(f, "b@x.test", u2);
    json_t *b = body("{\"name\":\"general\"}");
    json_t *cat = contact_category_create(&f->cx, b, &e);
    json_decref(b);
    b = body("{\"offline_grace_s\":5}");
    json_t *st = contact_settings_update(&f->cx, b, &e);
    json_decref(b);
    assert_non_null(st);
    assert_int_equal(json_integer_value(json_object_get(st, "offline_grace_s")), 5);
    assert_false(json_is_true(json_object_get(st, "offline_grace_default")));
    json_decref(st);
    update_agent(f, u1, "{\"presence\":\"online\"}");
    enqueue(f, json_string_value(json_object_get(cat, "id")), "convo1", c1);
    assert_string_equal(agent_of(f, c1), u1);
    update_agent(f, u1, "{\"presence\":\"offline\"}");
    assert_int_equal(contact_queue_grace_sweep(f->c, clock_now_ms() + 3000, &e), 0);
    assert_int_equal(contact_queue_grace_sweep(f->c, clock_now_ms() + 6000, &e), 1);
    /* A deactivated user's conversations go back at once, and they get no more. */
    update_agent(f, u2, "{\"presence\":\"online\"}");
    assert_string_equal(agent_of(f, c1), u2);
    assert_int_equal(
        store_exec(f->c, &e, "UPDATE users SET deactivated_at = 1 WHERE id = $1", "s", u2), 1);
    /* (No contact_queue_agent_changed: the sweep finds out by itself.) */
    assert_int_equal(contact_queue_grace_sweep(f->c, clock_now_ms(), &e), 1);
    assert_string_equal(agent_of(f, c1), "waiting");
    assert_int_equal(contact_queue_grace_sweep(f->c, clock_now_ms(), &e), 0);
    /* Back to the server's setting. */
    b = body("{\"offline_grace_s\":null}");
    st = contact_settings_update(&f->cx, b, &e);
    json_decref(b);
    assert_int_equal(json_integer_value(json_object_get(st, "offline_grace_s")), 60);
    assert_true(json_is_true(json_object_get(st, "offline_grace_default")));
    json_decref(st);
    json_decref(cat);
}

static void test_pick_race_one_winner(void **state)
{
    fx_t *f = *state;
    err_t e;
    char u1[27], u2[27], c1[27];
    user(f, "a@x.test", u1);
    user(f, "b@x.test", u2);
    json_t *b = body("{\"name\":\"general\"}");
    json_t *cat = contact_category_create(&f->cx, b, &e);
    json_decref(b);
    enqueue(f, json_string_value(json_object_get(cat, "id")), "convo1", c1);
    contact_ctx_t a1 = {f->c, f->project, u1, CONTACT_R_AGENT, "user:a", NULL};
    contact_ctx_t a2 = {f->c, f->project, u2, CONTACT_R_AGENT, "user:b", NULL};
    json_t *r = contact_queue_pick(&a1, c1, &e);
    assert_non_null(r);
    json_decref(r);
    assert_null(contact_queue_pick(&a2, c1, &e));
    assert_int_equal(e.code, ERR_ABORTED);
    assert_string_equal(agent_of(f, c1), u1);
    json_decref(cat);
}

/* ---- the stream consumer: inbound, handover, flow claims ---- */

static void append(fx_t *f, const char *app, const char *kind, const char *payload)
{
    err_t e;
    assert_int_equal(store_begin(f->c, &e), 0);
    assert_int_equal(stream_append(f->c, f->project, app, kind, payload, NULL, &e), 0);
    assert_int_equal(store_commit(f->c, &e), 0);
}

static void inbound(fx_t *f, const char *app, const char *convo, const char *text)
{
    char p[512];
    snprintf(p, sizeof p,
             "{\"app_id\":\"%s\",\"message\":{\"conversation_id\":\"%s\",\"contact_id\":"
             "\"01ARZ3NDEKTSV4RRFFQ69G5FAV\",\"channel_identity\":{\"channel\":\"WHATSAPP\","
             "\"identity\":\"4670\"},\"contact_message\":{\"text_message\":{\"text\":\"%s\"}}}}",
             app, convo, text);
    append(f, app, "MESSAGE_INBOUND", p);
}

/* "category-name/priority/source" of the open conversation of convo, or "none". */
static const char *queued(fx_t *f, const char *convo)
{
    static char out[128];
    err_t e;
    store_stmt_t *st = store_query(f->c, &e,
                                   "SELECT c.name, k.priority, k.source FROM contact_conversations "
                                   "k JOIN contact_categories c ON c.id = k.category_id WHERE "
                                   "k.conversation_id = $1 AND k.status <> 'closed'",
                                   "s", convo);
    assert_non_null(st);
    int rc = store_step(st, &e);
    if (rc == 1)
        snprintf(out, sizeof out, "%s/%lld/%s", store_col_text(st, 0),
                 (long long)store_col_int(st, 1), store_col_text(st, 2));
    else
        snprintf(out, sizeof out, "none");
    store_done(st);
    return out;
}

static int claim_app2(const char *project_id, const char *app_id)
{
    (void)project_id;
    return strcmp(app_id, "APP2") == 0;
}

static void test_consumer_inbound_handover_and_claims(void **state)
{
    fx_t *f = *state;
    err_t e;
    json_t *b = body("{\"name\":\"vip\",\"priority\":3}");
    json_t *vip = contact_category_create(&f->cx, b, &e);
    json_decref(b);
    assert_non_null(vip);
    char text[160];
    snprintf(text, sizeof text, "{\"category_id\":\"%s\",\"keywords\":[\"refund\"]}",
             json_string_value(json_object_get(vip, "id")));
    b = body(text);
    json_t *rule = contact_rule_create(&f->cx, b, &e);
    json_decref(b);
    assert_non_null(rule);
    for (const char *app = "APP1"; app; app = strcmp(app, "APP1") == 0 ? "APP2" : NULL)
        assert_int_equal(store_exec(f->c, &e,
                                    "INSERT INTO contact_channels (project_id, app_id, created_at) "
                                    "VALUES ($1, $2, 0)",
                                    "ss", f->project, app),
                         1);
    contact_set_flow_claim(claim_app2);
    inbound(f, "APP0", "CV0", "refund please"); /* not linked */
    inbound(f, "APP1", "CV1", "I want a refund");
    inbound(f, "APP1", "CV2", "hello");
    inbound(f, "APP1", "CV1", "still there?"); /* same conversation: no new entry */
    inbound(f, "APP2", "CV3", "refund");       /* a flow handles app 2 */
    append(f, "APP1", "CONTACT_HANDOVER",
           "{\"conversation_id\":\"CV4\",\"contact_id\":\"CT4\",\"app_id\":\"APP1\","
           "\"channel\":\"WHATSAPP\",\"category\":\"vip\",\"priority\":9}");
    append(f, "APP1", "CONTACT_HANDOVER",
           "{\"conversation_id\":\"CV5\",\"app_id\":\"APP1\",\"category\":\"nope\"}");
    assert_int_equal(contact_consume_once(f->store, &e), 7);
    contact_set_flow_claim(NULL);
    assert_string_equal(queued(f, "CV0"), "none");
    assert_string_equal(queued(f, "CV1"), "vip/3/inbound");
    assert_string_equal(queued(f, "CV2"), "default/0/inbound"); /* made on demand */
    assert_string_equal(queued(f, "CV3"), "none");
    assert_string_equal(queued(f, "CV4"), "vip/9/handover");
    assert_string_equal(queued(f, "CV5"), "default/0/handover");
    store_stmt_t *st = store_query(f->c, &e,
                                   "SELECT COUNT(*) FROM contact_conversations WHERE "
                                   "conversation_id = 'CV1'",
                                   "");
    assert_int_equal(store_step(st, &e), 1);
    assert_int_equal(store_col_int(st, 0), 1);
    store_done(st);
    /* The queue order: vip priority 9, then vip 3, then the defaults by waiting time. */
    json_t *q = contact_queue_list(&f->cx, &e);
    json_t *arr = json_object_get(q, "conversations");
    assert_int_equal(json_array_size(arr), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, 0), "conversation_id")), "CV4");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, 1), "conversation_id")), "CV1");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, 2), "conversation_id")), "CV2");
    json_decref(q);
    json_decref(vip);
    json_decref(rule);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_then_waiting_order),
        cmocka_unit_test(test_priority_across_categories),
        cmocka_unit_test(test_skills_required_and_active),
        cmocka_unit_test(test_capacity_and_auto_allocate),
        cmocka_unit_test(test_fewest_active_then_idle_longest),
        cmocka_unit_test(test_requeue_keeps_position),
        cmocka_unit_test(test_matches_reference_rule),
        cmocka_unit_test(test_many_waiting_and_agents),
        cmocka_unit_test(test_keywords_whole_words_any_case),
        cmocka_unit_test_setup_teardown(test_reruns_on_every_unblocking_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_requeue_original_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_project_override_and_deactivated_agents, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pick_race_one_winner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_inbound_handover_and_claims, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
