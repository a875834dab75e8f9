/* tcache.c: the token-stamped string cache (see tcache.h). */
#include "base/tcache.h"
#include "base/buf.h"
#include "base/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    void *value;
    size_t len;
    uint64_t token;
} slot_t;

struct tcache {
    pthread_mutex_t mu;
    unsigned n;
    slot_t *slots;
};

static unsigned slot_of(const tcache_t *c, const char *key)
{
    return (unsigned)(hash_str(key) % c->n);
}

tcache_t *tcache_new(unsigned slots)
{
    tcache_t *c = xcalloc(1, sizeof *c);
    c->n = slots ? slots : 1;
    c->slots = xcalloc(c->n, sizeof *c->slots);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void tcache_free(tcache_t *c)
{
    if (!c) return;
    for (unsigned i = 0; i < c->n; i++) {
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
    slot_t *s = &c->slots[slot_of(c, key)];
    pthread_mutex_lock(&c->mu);
    if (s->key && s->token == token && s->len <= cap && strcmp(s->key, key) == 0) {
        memcpy(out, s->value, s->len);
        n = (int)s->len;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

void tcache_put(tcache_t *c, const char *key, uint64_t token, const void *value, size_t len)
{
    char *k = xstrdup(key);
    void *v = xmalloc(len ? len : 1);
    memcpy(v, value, len);
    slot_t *s = &c->slots[slot_of(c, key)];
    pthread_mutex_lock(&c->mu);
    char *old_k = s->key;
    void *old_v = s->value;
    s->key = k;
    s->value = v;
    s->len = len;
    s->token = token;
    pthread_mutex_unlock(&c->mu);
    free(old_k);
    free(old_v);
}
