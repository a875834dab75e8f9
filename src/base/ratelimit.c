/* ratelimit.c: an open-addressed table of buckets behind striped locks. Buckets are never
 * removed: keys are project ids, a small and slowly growing set. */
#include "base/ratelimit.h"
#include "base/buf.h"
#include "base/clock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RL_STRIPES 16

typedef struct rl_bucket {
    char *key;
    double tokens;
    int64_t last_ns;
    struct rl_bucket *next;
} rl_bucket_t;

struct ratelimit {
    double rate, burst;
    pthread_mutex_t lock[RL_STRIPES];
    rl_bucket_t *head[RL_STRIPES];
};

static unsigned rl_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

ratelimit_t *ratelimit_new(double rate, double burst)
{
    ratelimit_t *rl = xcalloc(1, sizeof *rl);
    rl->rate = rate;
    rl->burst = burst > 0 ? burst : (rate < 1 ? 1 : rate);
    for (int i = 0; i < RL_STRIPES; i++)
        pthread_mutex_init(&rl->lock[i], NULL);
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl) return;
    for (int i = 0; i < RL_STRIPES; i++) {
        for (rl_bucket_t *b = rl->head[i], *n; b; b = n) {
            n = b->next;
            free(b->key);
            free(b);
        }
        pthread_mutex_destroy(&rl->lock[i]);
    }
    free(rl);
}

int ratelimit_take(ratelimit_t *rl, const char *key, double *retry_after_s)
{
    unsigned stripe = rl_hash(key) % RL_STRIPES;
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&rl->lock[stripe]);
    rl_bucket_t *b = rl->head[stripe];
    while (b && strcmp(b->key, key) != 0)
        b = b->next;
    if (!b) {
        b = xcalloc(1, sizeof *b);
        b->key = xstrdup(key);
        b->tokens = rl->burst;
        b->last_ns = now;
        b->next = rl->head[stripe];
        rl->head[stripe] = b;
    }
    b->tokens += (double)(now - b->last_ns) / 1e9 * rl->rate;
    if (b->tokens > rl->burst) b->tokens = rl->burst;
    b->last_ns = now;
    int ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else if (retry_after_s)
        *retry_after_s = (1.0 - b->tokens) / rl->rate;
    pthread_mutex_unlock(&rl->lock[stripe]);
    return ok;
}
