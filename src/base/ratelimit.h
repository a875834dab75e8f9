/* ratelimit.h: token buckets keyed by a string (a project id), thread-safe. */
#ifndef PARLEY_BASE_RATELIMIT_H
#define PARLEY_BASE_RATELIMIT_H

typedef struct ratelimit ratelimit_t;

/* rate tokens per second, burst tokens at most (burst <= 0: one second's worth). */
ratelimit_t *ratelimit_new(double rate, double burst);
void ratelimit_free(ratelimit_t *rl);
/* 1 if a token was taken; 0 if not, with *retry_after_s set to the wait for one. */
int ratelimit_take(ratelimit_t *rl, const char *key, double *retry_after_s);

#endif
