/* buf.h: a growable byte buffer (always NUL-terminated) for building text: metrics,
 * SQL, response bodies. The owner calls buf_free. Allocation failure aborts (like
 * Redis's zmalloc): a server out of memory cannot answer sensibly anyway. */
#ifndef PARLEY_BASE_BUF_H
#define PARLEY_BASE_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);
void buf_append(buf_t *b, const void *data, size_t len);
void buf_puts(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the data to the caller (who frees it) and reset b. */
char *buf_steal(buf_t *b);

/* malloc/realloc/strdup that abort on failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
