/* routing_alloc.c: the contact center allocator's decision rate (src/contact/allocator.c) in
 * a steady state with 10,000 waiting conversations and 1,000 agents with mixed skills.
 *
 * Set-up: 16 skills, 24 categories each requiring 1 or 2 of them, 1,000 agents holding 2 to
 * 5 skills (a quarter offline, capacities 1 to 4). The queue is filled to 10,000 and every
 * agent filled to capacity. Then each round ends one random active conversation (its agent
 * frees a slot and becomes idle), lets the allocator decide (next + assign), and adds a new
 * waiting conversation, so the queue stays at 10,000 and the agents stay busy: every decision
 * is made against the full queue. A decision = contact_alloc_next + contact_alloc_assign.
 *
 * Usage: routing_alloc [ROUNDS] (default 200000). Prints one machine-readable line:
 *   routing_alloc waiting=10000 agents=1000 decisions=N seconds=S decisions_per_s=R
 *   ns_per_decision=X */
#include "contact/allocator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAITING    10000
#define AGENTS     1000
#define SKILLS     16
#define CATEGORIES 24

static unsigned long long rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 200000;
    if (rounds <= 0) rounds = 200000;
    contact_alloc_t *a = contact_alloc_new();
    char id[CONTACT_ID_MAX], cat[CONTACT_ID_MAX];
    for (int c = 0; c < CATEGORIES; c++) {
        contact_skills_t req = {0};
        contact_skills_add(&req, c % SKILLS);
        if (c >= SKILLS) contact_skills_add(&req, (c * 7 + 3) % SKILLS);
        snprintf(cat, sizeof cat, "cat%02d", c);
        contact_alloc_category(a, cat, &req);
    }
    for (int g = 0; g < AGENTS; g++) {
        contact_agent_state_t st = {.online = rnd(4) != 0,
                                    .auto_allocate = 1,
                                    .capacity = 1 + (int)rnd(4),
                                    .idle_since = g};
        int n = 2 + (int)rnd(4);
        for (int k = 0; k < n; k++)
            contact_skills_add(&st.skills, (int)rnd(SKILLS));
        snprintf(id, sizeof id, "agent%04d", g);
        contact_alloc_agent(a, id, &st);
    }
    long next_conv = 0;
    int64_t clock_ms = 1;
    /* Active conversations, to end one at random each round. */
    char(*active)[CONTACT_ID_MAX] = calloc(AGENTS * 8, CONTACT_ID_MAX);
    int nactive = 0;
    char conv[CONTACT_ID_MAX], agent[CONTACT_ID_MAX];
    /* Fill: the queue first, then allocate until every reachable slot is taken, then top
     * the queue back up to 10,000. */
    for (; next_conv < WAITING; next_conv++) {
        snprintf(id, sizeof id, "conv%010ld", next_conv);
        snprintf(cat, sizeof cat, "cat%02d", rnd(CATEGORIES));
        contact_alloc_wait(a, id, cat, (int)rnd(3), clock_ms++);
    }
    while (contact_alloc_next(a, conv, agent)) {
        contact_alloc_assign(a, conv, agent);
        memcpy(active[nactive++], conv, CONTACT_ID_MAX);
    }
    while (contact_alloc_waiting(a, NULL, NULL) < WAITING) {
        snprintf(id, sizeof id, "conv%010ld", next_conv++);
        snprintf(cat, sizeof cat, "cat%02d", rnd(CATEGORIES));
        contact_alloc_wait(a, id, cat, (int)rnd(3), clock_ms++);
    }
    long decisions = 0;
    double t0 = now_s();
    for (long r = 0; r < rounds && nactive > 0; r++) {
        int k = (int)rnd((unsigned)nactive);
        contact_alloc_forget(a, active[k], clock_ms++);
        memcpy(active[k], active[--nactive], CONTACT_ID_MAX);
        while (contact_alloc_next(a, conv, agent)) {
            contact_alloc_assign(a, conv, agent);
            memcpy(active[nactive++], conv, CONTACT_ID_MAX);
            decisions++;
            snprintf(id, sizeof id, "conv%010ld", next_conv++);
            snprintf(cat, sizeof cat, "cat%02d", rnd(CATEGORIES));
            contact_alloc_wait(a, id, cat, (int)rnd(3), clock_ms++);
        }
    }
    double secs = now_s() - t0;
    int waiting = contact_alloc_waiting(a, NULL, NULL);
    printf("routing_alloc waiting=%d agents=%d decisions=%ld seconds=%.3f decisions_per_s=%.0f "
           "ns_per_decision=%.0f\n",
           waiting, AGENTS, decisions, secs, decisions / secs, secs * 1e9 / (double)decisions);
    free(active);
    contact_alloc_free(a);
    return decisions > 0 ? 0 : 1;
}
