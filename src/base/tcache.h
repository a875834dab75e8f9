/* tcache.h: a small thread-safe cache of byte strings stamped with a token (e.g. the store's
 * config generation, store_config_gen): an entry is returned only while the caller presents
 * the token it was stored under, so one counter read replaces the lookups it caches, and
 * any change that advances the counter empties the cache logically. Fixed size, four-way
 * set associative by key hash: a new key replaces a stale entry of its set, else the one
 * used least recently. */
#ifndef PARLEY_BASE_TCACHE_H
#define PARLEY_BASE_TCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tcache tcache_t;

/* slots: how many entries (rounded up to a multiple of four). Never fails (aborts on no
 * memory, as xmalloc). */
tcache_t *tcache_new(unsigned slots);
void tcache_free(tcache_t *c);
/* Copy key's value into out if it was stored under token and fits cap: its length, else -1
 * (not there, stale, or too long). */
int tcache_get(tcache_t *c, const char *key, uint64_t token, void *out, size_t cap);
/* Store len bytes of value for key under token (both copied). */
void tcache_put(tcache_t *c, const char *key, uint64_t token, const void *value, size_t len);

#endif
