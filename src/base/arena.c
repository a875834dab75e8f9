/* arena.c: linked blocks; large requests get a block of their own. */
#include "base/arena.h"
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block_t;

struct arena {
    arena_block_t *head;
    size_t block_size;
};

static arena_block_t *block_new(size_t cap)
{
    arena_block_t *b = xmalloc(sizeof *b + cap);
    b->next = NULL;
    b->used = 0;
    b->cap = cap;
    return b;
}

arena_t *arena_create(size_t first_block)
{
    arena_t *a = xmalloc(sizeof *a);
    a->block_size = first_block < 1024 ? 1024 : first_block;
    a->head = block_new(a->block_size);
    return a;
}

void arena_destroy(arena_t *a)
{
    if (!a) return;
    for (arena_block_t *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(a);
}

void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block_t *b = a->head;
    if (b->used + n > b->cap) {
        size_t cap = n > a->block_size ? n : a->block_size;
        arena_block_t *nb = block_new(cap);
        if (n > a->block_size) { /* keep the current block as head for small requests */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return memset(nb->data, 0, n);
        }
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return memset(p, 0, n);
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
