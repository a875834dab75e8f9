/* hash.h: the one string hash for in-memory tables (FNV-1a, 64 bits): statement caches,
 * token caches, the contact center's maps. Not for anything an attacker must not steer. */
#ifndef PARLEY_BASE_HASH_H
#define PARLEY_BASE_HASH_H

#include <stdint.h>

static inline uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

#endif
