/* arena.h: a request-scoped bump allocator, freed all at once (nginx's pool idea).
 * Nothing allocated from an arena is freed individually; arena_destroy releases it all. */
#ifndef PARLEY_BASE_ARENA_H
#define PARLEY_BASE_ARENA_H

#include <stddef.h>

typedef struct arena arena_t;

arena_t *arena_create(size_t first_block);
void arena_destroy(arena_t *a);
void *arena_alloc(arena_t *a, size_t n); /* 16-byte aligned, zeroed */
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
