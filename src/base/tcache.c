/* tcache.c: the token-stamped string cache (see tcache.h). Four-way set associative: a key
 * hashes to a set of four slots, and a new key takes a free or stale slot of its set, else
 * the one used least recently, so a few keys that share a set do not keep evicting each
 * other (direct mapping did, and each eviction cost the caller its SQL lookup again). */
#include "base/tcache.h"
#include "base/buf.h"
#include "base/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

typedef struct {
    char *key;
    void *value;
    size_t len;
    uint64_t token;
    uint64_t used; /* c->clock when last stored or found */
} slot_t;

struct tcache {
    pthread_mutex_t mu;
    unsigned sets;
    uint64_t clock;
    slot_t *slots; /* sets * WAYS */
};

static slot_t *set_of(const tcache_t *c, const char *key)
{
    return &c->slots[(size_t)(hash_str(key) % c->sets) * WAYS];
}

tcache_t *tcache_new(unsigned slots)
{
    tcache_t *c = xcalloc(1, sizeof *c);
    c->sets = slots > WAYS ? (slots + WAYS - 1) / WAYS : 1;
    c->slots = xcalloc((size_t)c->sets * WAYS, sizeof *c->slots);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void tcache_free(tcache_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < (size_t)c->sets * WAYS; i++) {
        free(c->slots[i].key);
        free(c->slots[i].value);
    }
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int tcache_get(tcache_t *c, const char *key, uint64_t token, void *out, size_t cap)
{
    int n = -1;
    slot_t *set = set_of(c, key);
    pthread_mutex_lock(&c->mu);
    for (int w = 0; w < WAYS; w++) {
        slot_t *s = &set[w];
        if (!s->key || s->token != token || strcmp(s->key, key) != 0) continue;
        if (s->len <= cap) {
            memcpy(out, s->value, s->len);
            n = (int)s->len;
            s->used = ++c->clock;
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

void tcache_put(tcache_t *c, const char *key, uint64_t token, const void *value, size_t len)
{
    char *k = xstrdup(key);
    void *v = xmalloc(len ? len : 1);
    memcpy(v, value, len);
    slot_t *set = set_of(c, key);
    pthread_mutex_lock(&c->mu);
    /* The same key, else an empty slot, else a stale one (stored under another token: it
     * will never be returned again), else the least recently used. */
    slot_t *s = NULL;
    for (int w = 0; w < WAYS && !s; w++)
        if (set[w].key && strcmp(set[w].key, key) == 0) s = &set[w];
    for (int w = 0; w < WAYS && !s; w++)
        if (!set[w].key) s = &set[w];
    for (int w = 0; w < WAYS && !s; w++)
        if (set[w].token != token) s = &set[w];
    if (!s) {
        s = &set[0];
        for (int w = 1; w < WAYS; w++)
            if (set[w].used < s->used) s = &set[w];
    }
    char *old_k = s->key;
    void *old_v = s->value;
    s->key = k;
    s->value = v;
    s->len = len;
    s->token = token;
    s->used = ++c->clock;
    pthread_mutex_unlock(&c->mu);
    free(old_k);
    free(old_v);
}
