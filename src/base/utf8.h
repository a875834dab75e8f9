/* utf8.h: counting and cutting UTF-8 text by characters (what API limits count). Input is
 * assumed to be valid UTF-8 (jansson guarantees it for JSON strings). */
#ifndef PARLEY_BASE_UTF8_H
#define PARLEY_BASE_UTF8_H

#include <stddef.h>

/* Unicode characters (code points) in s. */
size_t utf8_len(const char *s);
/* Copy src (NULL = "") into dst (cap bytes, always NUL-terminated), cutting at a
 * character boundary. */
void utf8_copy(char *dst, size_t cap, const char *src);

#endif
